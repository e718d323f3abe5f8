// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {ECDSA} from "@openzeppelin/contracts/utils/cryptography/ECDSA.sol";
import {MessageHashUtils} from "@openzeppelin/contracts/utils/cryptography/MessageHashUtils.sol";
import {IFederationGovernor} from "./IFederationGovernor.sol";
import {IFederationLedger} from "./IFederationLedger.sol";
import {RuleFeasibility} from "./RuleFeasibility.sol";
import {SignedTransaction} from "./SignedTransaction.sol";

/// @dev The ledger functions the governor uses (FederationLedger; owner-only ones need the governor as owner).
interface ILedgerAdmin {
    function admitMember(address account, bytes32 encKey, uint64 weight) external;
    function removeMember(address account) external;
    function registerAuditor(address account, bytes32 encKey) external;
    function removeAuditor(address account) external;
    function fund() external payable;
    function effectiveWeight(address account) external view returns (uint64);
    function totals() external view returns (uint256 memberCount, uint256 totalWeight, uint256 finalizedCount);
    function memberKey(address account) external view returns (bytes32);
    function auditorKey(address account) external view returns (bytes32);
    function currentRound() external view returns (uint256);
    function paramsForRound(uint256 r) external view returns (IFederationLedger.Params memory);
    function setRoundParams(IFederationLedger.RoundParamsUpdate calldata u) external;
    function members() external view returns (address[] memory);
}

/// @title FederationGovernor
/// @notice See `IFederationGovernor`. Owner of its ledger; has no owner itself.
/// @dev Votes weigh the voter's `effectiveWeight` on the ledger when it votes (no checkpoints: reputation only
///      moves by rounds, and each member votes once); the pass and quorum thresholds use the ledger's total
///      weight when the proposal was made. A gossip envelope's EIP-191 signature covers its fixed-size header
///      `_envelopeHeader` (peer/net/envelope.py, docs/interfaces.md), so a slash proof is a `SignedEnvelope`.
contract FederationGovernor is IFederationGovernor {
    uint8 public constant KIND_ADMIT = 1;
    uint8 public constant KIND_REMOVE = 2;
    uint8 public constant KIND_REGISTER_AUDITOR = 3;
    uint8 public constant KIND_REMOVE_AUDITOR = 4;
    uint8 public constant KIND_PARAMETER = 5;
    uint8 public constant KIND_ROUND_PARAMS = 6;

    /// @notice Bounds of a round-parameter proposal's commit and vote periods: a round cannot be made so short
    ///         that no peer can take part, nor so long that a failed round blocks the federation for months.
    uint32 public constant MIN_ROUND_PERIOD = 10;
    uint32 public constant MAX_ROUND_PERIOD = 30 days;

    uint8 public constant PARAM_MIN_STAKE = 1;
    uint8 public constant PARAM_PASS_BPS = 2;
    uint8 public constant PARAM_QUORUM_BPS = 3;
    uint8 public constant PARAM_VOTING_PERIOD = 4;
    uint8 public constant PARAM_EXECUTION_DELAY = 5;
    uint8 public constant PARAM_EXECUTION_WINDOW = 6;
    uint8 public constant PARAM_WITHDRAW_DELAY = 7;
    uint8 public constant PARAM_REPORTER_SHARE_BPS = 8;
    uint8 public constant PARAM_SLASH_BPS = 9;

    uint8 public constant STATE_NONE = 0;
    uint8 public constant STATE_ACTIVE = 1; // voting
    uint8 public constant STATE_DEFEATED = 2; // vote ended without majority or quorum
    uint8 public constant STATE_QUEUED = 3; // passed, waiting executionDelay
    uint8 public constant STATE_READY = 4; // executable
    uint8 public constant STATE_EXPIRED = 5; // passed but not executed within executionWindow
    uint8 public constant STATE_EXECUTED = 6;

    uint8 public constant OFFENCE_EQUIVOCATION = 1;
    uint8 public constant OFFENCE_COMMIT_MISMATCH = 2;

    uint64 public constant MAX_MEMBER_WEIGHT = 1000 * 1_000_000; // FederationLedger.MAX_MEMBER_WEIGHT
    uint256 private constant BPS = 10_000;
    /// @dev Domain tag of the envelope header (peer.net.envelope.ENVELOPE_TAG).
    bytes32 private constant ENVELOPE_TAG = keccak256("fedledger.gossip.envelope.v2");

    /// @dev Vote state, the only slot `castVote` writes (232 bits).
    struct Tally {
        uint64 forWeight;
        uint64 againstWeight;
        uint64 totalWeight;
        uint40 voteEnd;
    }

    struct Proposal {
        uint8 kind;
        bool executed;
        uint8 param;
        uint64 weight;
        address proposer;
        address account;
        bytes32 encKey;
        uint256 value;
    }

    struct Stake {
        uint96 amount;
        uint40 unlockAt; // 0 while bonded to membership or candidacy; set by leave / removal / slash-removal
        bool bonded; // admitted through governance: slashable until withdrawn
    }

    ILedgerAdmin private immutable ledger_;
    GovParams private p;
    uint256 public proposalCount;
    /// @dev Slashed wei not yet forwarded to the ledger's reward pool, plus one: the slot never returns to zero,
    ///      so a slash pays 2.9k gas for it, not 22.1k.
    uint256 private slashedPlusOne = 1;
    mapping(uint256 => Tally) private tallies;
    mapping(uint256 => Proposal) private proposals;
    /// @dev The ledger round parameters a KIND_ROUND_PARAMS proposal sets.
    mapping(uint256 => IFederationLedger.RoundParamsUpdate) private roundParamsOf;
    mapping(address => Stake) private stakes;
    /// @dev Bit (id & 255) of word (id >> 8): `voter` voted on proposal id. Word 0 of every member gets bit 0
    ///      (proposal 0 never exists) at admission, so a vote writes a warm non-zero slot (2.9k gas, not 22.1k)
    ///      for the first 255 proposals; later each 256 proposals' first vote of a member pays for its word.
    mapping(address => mapping(uint256 => uint256)) private votedBits;
    /// @dev The same per (member, round) slashed, for either offence (one slash per member and round); word 0
    ///      pre-set the same way (round 0 is never a ledger round).
    mapping(address => mapping(uint256 => uint256)) private slashedBits;

    bool transient locked;

    modifier nonReentrant() {
        if (locked) revert ReentrantCall();
        locked = true;
        _;
        locked = false;
    }

    modifier onlyMember() {
        if (ledger_.memberKey(msg.sender) == bytes32(0)) revert NotMember(msg.sender);
        _;
    }

    /// @notice Govern `ledger_` (which must then transfer its ownership here). Refuses a ledger whose rule can
    ///         never aggregate with its members (RuleInfeasible) and out-of-bounds parameters (InvalidProposal).
    constructor(address ledgerAddress, GovParams memory initial) {
        ledger_ = ILedgerAdmin(ledgerAddress);
        (uint256 n,,) = ledger_.totals();
        _requireFeasible(n);
        address[] memory bootstrap = ledger_.members();
        for (uint256 i = 0; i < bootstrap.length; ++i) {
            _prepay(bootstrap[i]);
        }
        _set(PARAM_MIN_STAKE, initial.minStake);
        _set(PARAM_PASS_BPS, initial.passBps);
        _set(PARAM_QUORUM_BPS, initial.quorumBps);
        _set(PARAM_VOTING_PERIOD, initial.votingPeriod);
        _set(PARAM_EXECUTION_DELAY, initial.executionDelay);
        _set(PARAM_EXECUTION_WINDOW, initial.executionWindow);
        _set(PARAM_WITHDRAW_DELAY, initial.withdrawDelay);
        _set(PARAM_REPORTER_SHARE_BPS, initial.reporterShareBps);
        _set(PARAM_SLASH_BPS, initial.slashBps);
    }

    // ------------------------------------------------------------------ governance

    /// @inheritdoc IFederationGovernor
    function proposeAdmit(address account, bytes32 encKey, uint64 weight, uint256 stake_)
        external
        onlyMember
        returns (uint256)
    {
        if (account == address(0)) revert InvalidProposal("account");
        if (ledger_.memberKey(account) != bytes32(0)) revert AlreadyMember(account);
        if (encKey == bytes32(0)) revert InvalidProposal("encKey");
        if (weight == 0 || weight > MAX_MEMBER_WEIGHT) revert InvalidProposal("weight");
        if (stake_ < p.minStake || stake_ > type(uint96).max) revert InvalidProposal("stake");
        return _propose(Proposal(KIND_ADMIT, false, 0, weight, msg.sender, account, encKey, stake_));
    }

    /// @inheritdoc IFederationGovernor
    function proposeRemove(address account) external onlyMember returns (uint256) {
        if (ledger_.memberKey(account) == bytes32(0)) revert NotMember(account);
        (uint256 n,,) = ledger_.totals();
        _requireFeasible(n - 1);
        return _propose(Proposal(KIND_REMOVE, false, 0, 0, msg.sender, account, bytes32(0), 0));
    }

    /// @inheritdoc IFederationGovernor
    function proposeRegisterAuditor(address account, bytes32 encKey) external onlyMember returns (uint256) {
        if (account == address(0) || ledger_.auditorKey(account) != bytes32(0)) revert InvalidProposal("account");
        if (encKey == bytes32(0)) revert InvalidProposal("encKey");
        return _propose(Proposal(KIND_REGISTER_AUDITOR, false, 0, 0, msg.sender, account, encKey, 0));
    }

    /// @inheritdoc IFederationGovernor
    function proposeRemoveAuditor(address account) external onlyMember returns (uint256) {
        if (ledger_.auditorKey(account) == bytes32(0)) revert InvalidProposal("account");
        return _propose(Proposal(KIND_REMOVE_AUDITOR, false, 0, 0, msg.sender, account, bytes32(0), 0));
    }

    /// @inheritdoc IFederationGovernor
    function proposeParameter(uint8 param, uint256 value) external onlyMember returns (uint256) {
        _checkBounds(param, value);
        return _propose(Proposal(KIND_PARAMETER, false, param, 0, msg.sender, address(0), bytes32(0), value));
    }

    /// @inheritdoc IFederationGovernor
    function proposeRoundParams(IFederationLedger.RoundParamsUpdate calldata u) external onlyMember returns (uint256 id) {
        _checkRoundParams(u);
        id = _propose(Proposal(KIND_ROUND_PARAMS, false, 0, 0, msg.sender, address(0), bytes32(0), 0));
        roundParamsOf[id] = u;
    }

    /// @inheritdoc IFederationGovernor
    function castVote(uint256 id, bool support) external {
        Tally memory t = tallies[id];
        if (t.voteEnd == 0) revert UnknownProposal(id);
        if (block.timestamp >= t.voteEnd) revert VotingEnded(id, t.voteEnd);
        uint256 word = votedBits[msg.sender][id >> 8];
        uint256 bit = 1 << (id & 255);
        if (word & bit != 0) revert AlreadyVotedOnProposal(id, msg.sender);
        uint64 w = ledger_.effectiveWeight(msg.sender); // 0 for non-members (and removed ones)
        if (w == 0 && ledger_.memberKey(msg.sender) == bytes32(0)) revert NotMember(msg.sender);
        votedBits[msg.sender][id >> 8] = word | bit;
        if (support) t.forWeight += w;
        else t.againstWeight += w;
        tallies[id] = t;
        emit VoteCast(id, msg.sender, support, w);
    }

    /// @inheritdoc IFederationGovernor
    function execute(uint256 id) external nonReentrant {
        uint8 s = proposalState(id);
        if (s == STATE_ACTIVE || s == STATE_QUEUED) revert ProposalNotReady(id, uint256(tallies[id].voteEnd) + p.executionDelay);
        if (s != STATE_READY) revert ProposalNotExecutable(id, s);
        Proposal storage prop = proposals[id];
        prop.executed = true;
        uint8 kind = prop.kind;
        address account = prop.account;
        if (kind == KIND_ADMIT) {
            Stake memory st = stakes[account];
            if (st.unlockAt != 0 || st.amount < prop.value) {
                revert InsufficientStake(account, prop.value, st.unlockAt != 0 ? 0 : st.amount);
            }
            stakes[account] = Stake({amount: st.amount, unlockAt: 0, bonded: true});
            _prepay(account);
            ledger_.admitMember(account, prop.encKey, prop.weight);
        } else if (kind == KIND_REMOVE) {
            (uint256 n,,) = ledger_.totals();
            _requireFeasible(n - 1);
            ledger_.removeMember(account); // reverts NotMember if it already left
            _unbond(account);
        } else if (kind == KIND_REGISTER_AUDITOR) {
            ledger_.registerAuditor(account, prop.encKey);
        } else if (kind == KIND_REMOVE_AUDITOR) {
            ledger_.removeAuditor(account);
        } else if (kind == KIND_ROUND_PARAMS) {
            IFederationLedger.RoundParamsUpdate memory u = roundParamsOf[id];
            _checkRoundParams(u); // the member count may have changed since the proposal
            ledger_.setRoundParams(u); // applies from the ledger's next round
        } else {
            _set(prop.param, prop.value);
        }
        emit ProposalExecuted(id, msg.sender);
    }

    // ------------------------------------------------------------------ stake and slashing

    /// @inheritdoc IFederationGovernor
    function stake() external payable {
        Stake memory st = stakes[msg.sender];
        if (st.unlockAt != 0) revert WithdrawLocked(msg.sender, st.unlockAt); // leaving: withdraw first
        if (msg.value == 0) revert InvalidProposal("value");
        uint256 total = uint256(st.amount) + msg.value;
        if (total > type(uint96).max) revert InvalidProposal("value");
        stakes[msg.sender].amount = uint96(total);
        emit Staked(msg.sender, msg.value, total);
    }

    /// @inheritdoc IFederationGovernor
    function leave() external nonReentrant {
        if (ledger_.memberKey(msg.sender) != bytes32(0)) {
            (uint256 n,,) = ledger_.totals();
            _requireFeasible(n - 1);
            ledger_.removeMember(msg.sender);
        } else if (stakes[msg.sender].amount == 0) {
            revert NothingToWithdraw(msg.sender);
        } else if (stakes[msg.sender].unlockAt != 0) {
            revert WithdrawLocked(msg.sender, stakes[msg.sender].unlockAt);
        }
        _unbond(msg.sender);
    }

    /// @inheritdoc IFederationGovernor
    function withdraw() external nonReentrant {
        Stake memory st = stakes[msg.sender];
        if (st.amount == 0) revert NothingToWithdraw(msg.sender);
        if (st.unlockAt == 0 || block.timestamp < st.unlockAt) revert WithdrawLocked(msg.sender, st.unlockAt);
        delete stakes[msg.sender];
        emit Withdrawn(msg.sender, st.amount);
        _pay(msg.sender, st.amount);
    }

    /// @inheritdoc IFederationGovernor
    function slashEquivocation(SignedEnvelope calldata a, SignedEnvelope calldata b) external nonReentrant {
        address signer = _verifyEnvelope(a);
        if (b.sender != signer || b.round != a.round || b.updateHash == a.updateHash) revert NotEquivocation();
        _verifyEnvelope(b);
        _markSlashed(signer, a.round);
        _slash(signer, a.round, OFFENCE_EQUIVOCATION);
    }

    /// @inheritdoc IFederationGovernor
    function slashCommitMismatch(SignedEnvelope calldata e, SignedTx calldata commitTx) external nonReentrant {
        address signer = _verifyEnvelope(e);
        _markSlashed(signer, e.round); // first: a replay after the removal reverts AlreadySlashed
        (uint256 committedRound, bytes32 committed) = _verifyCommit(commitTx, signer);
        if (committedRound != e.round) revert NotCommitted(signer, e.round);
        if (committed == e.updateHash) revert CommitMatches(signer, e.round);
        _slash(signer, e.round, OFFENCE_COMMIT_MISMATCH);
    }

    /// @inheritdoc IFederationGovernor
    function forwardSlashed() external nonReentrant {
        uint256 amount = slashedPlusOne - 1;
        slashedPlusOne = 1;
        emit SlashedForwarded(amount);
        if (amount > 0) ledger_.fund{value: amount}();
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IFederationGovernor
    function ledger() external view returns (address) {
        return address(ledger_);
    }

    /// @inheritdoc IFederationGovernor
    function params() external view returns (GovParams memory) {
        return p;
    }

    /// @inheritdoc IFederationGovernor
    function proposal(uint256 id) external view returns (ProposalView memory v) {
        Proposal memory prop = proposals[id];
        Tally memory t = tallies[id];
        if (t.voteEnd == 0) revert UnknownProposal(id);
        v = ProposalView(
            prop.kind, prop.proposer, prop.account, prop.encKey, prop.weight, prop.param, prop.value,
            t.forWeight, t.againstWeight, t.totalWeight, t.voteEnd, prop.executed
        );
    }

    /// @inheritdoc IFederationGovernor
    function proposalState(uint256 id) public view returns (uint8) {
        Tally memory t = tallies[id];
        if (t.voteEnd == 0) return STATE_NONE;
        if (proposals[id].executed) return STATE_EXECUTED;
        if (block.timestamp < t.voteEnd) return STATE_ACTIVE;
        uint256 total = t.totalWeight;
        bool passed = uint256(t.forWeight) * BPS > uint256(p.passBps) * total
            && (uint256(t.forWeight) + t.againstWeight) * BPS >= uint256(p.quorumBps) * total;
        if (!passed) return STATE_DEFEATED;
        uint256 readyAt = uint256(t.voteEnd) + p.executionDelay;
        if (block.timestamp < readyAt) return STATE_QUEUED;
        if (block.timestamp < readyAt + p.executionWindow) return STATE_READY;
        return STATE_EXPIRED;
    }

    /// @inheritdoc IFederationGovernor
    function roundParamsProposal(uint256 id) external view returns (IFederationLedger.RoundParamsUpdate memory) {
        if (proposals[id].kind != KIND_ROUND_PARAMS) revert UnknownProposal(id);
        return roundParamsOf[id];
    }

    /// @inheritdoc IFederationGovernor
    function hasVoted(uint256 id, address voter) external view returns (bool) {
        return votedBits[voter][id >> 8] & (1 << (id & 255)) != 0;
    }

    /// @notice Slashed wei not yet forwarded to the ledger's reward pool (`forwardSlashed`).
    function slashedPool() external view returns (uint256) {
        return slashedPlusOne - 1;
    }

    /// @notice Whether `member` was slashed for equivocation in `round`.
    function isSlashed(address member, uint256 round) external view returns (bool) {
        return round != 0 && slashedBits[member][round >> 8] & (1 << (round & 255)) != 0;
    }

    /// @inheritdoc IFederationGovernor
    function stakeOf(address account) external view returns (uint256 amount, uint256 unlockAt, bool bonded) {
        Stake memory st = stakes[account];
        return (st.amount, st.unlockAt, st.bonded);
    }

    /// @inheritdoc IFederationGovernor
    function minValidUpdates(string calldata rule, uint256 f) external pure returns (uint256) {
        return RuleFeasibility.minValid(rule, f);
    }

    // ------------------------------------------------------------------ internals

    function _propose(Proposal memory prop) private returns (uint256 id) {
        id = ++proposalCount;
        (, uint256 total,) = ledger_.totals();
        uint40 voteEnd = uint40(block.timestamp + p.votingPeriod);
        proposals[id] = prop;
        tallies[id] = Tally({forWeight: 0, againstWeight: 0, totalWeight: uint64(total), voteEnd: voteEnd});
        emit ProposalCreated(
            id, msg.sender, prop.kind, prop.account, prop.encKey, prop.weight, prop.param, prop.value, uint64(total),
            voteEnd
        );
    }

    /// @dev A member set of `n` must satisfy the ledger's rule for its f, and f < n as the ledger requires: the
    ///      open round's rule and the one set for the next round (the same unless a change is pending).
    function _requireFeasible(uint256 n) private view {
        uint256 r = ledger_.currentRound();
        IFederationLedger.Params memory open = ledger_.paramsForRound(r);
        _requireFeasible(open.rule, open.f, n);
        IFederationLedger.Params memory next = ledger_.paramsForRound(r + 1);
        _requireFeasible(next.rule, next.f, n);
    }

    function _requireFeasible(string memory rule, uint256 f, uint256 n) private pure {
        if (f >= n || n < RuleFeasibility.minValid(rule, f)) revert RuleInfeasible(rule, f, n);
    }

    /// @dev Bounds of a round-parameter proposal, at proposal and again at execution: the ledger's own bounds
    ///      (InvalidProposal(<name>)), periods within MIN_ROUND_PERIOD .. MAX_ROUND_PERIOD, and the rule able to
    ///      tolerate f with the current member count (RuleInfeasible; an unknown rule reverts UnknownRule).
    function _checkRoundParams(IFederationLedger.RoundParamsUpdate memory u) private view {
        uint256 ruleLength = bytes(u.rule).length;
        if (ruleLength == 0 || ruleLength > 64) revert InvalidProposal("rule");
        if (u.quorumBps < 5000 || u.quorumBps >= BPS) revert InvalidProposal("quorumBps");
        if (u.commitPeriod < MIN_ROUND_PERIOD || u.commitPeriod > MAX_ROUND_PERIOD) {
            revert InvalidProposal("commitPeriod");
        }
        if (u.votePeriod < MIN_ROUND_PERIOD || u.votePeriod > MAX_ROUND_PERIOD) revert InvalidProposal("votePeriod");
        if (u.rewardPerRound > type(uint96).max) revert InvalidProposal("rewardPerRound");
        (uint256 n,,) = ledger_.totals();
        _requireFeasible(u.rule, u.f, n);
    }

    /// @dev Make word 0 of a member's vote and slash bitmaps non-zero (see `votedBits`): paid once at admission.
    function _prepay(address account) private {
        if (votedBits[account][0] == 0) votedBits[account][0] = 1;
        if (slashedBits[account][0] == 0) slashedBits[account][0] = 1;
    }

    function _unbond(address account) private {
        Stake memory st = stakes[account];
        st.unlockAt = uint40(block.timestamp + p.withdrawDelay);
        stakes[account] = st;
        emit WithdrawRequested(account, st.amount, st.unlockAt);
    }

    function _checkBounds(uint8 param, uint256 v) private pure {
        bool ok;
        if (param == PARAM_MIN_STAKE) ok = v <= type(uint96).max;
        else if (param == PARAM_PASS_BPS) ok = v >= 5000 && v < BPS;
        else if (param == PARAM_QUORUM_BPS) ok = v >= 1 && v <= BPS;
        else if (param == PARAM_VOTING_PERIOD) ok = v >= 60 && v <= 30 days;
        else if (param == PARAM_EXECUTION_DELAY) ok = v <= 30 days;
        else if (param == PARAM_EXECUTION_WINDOW) ok = v >= 60 && v <= 90 days;
        else if (param == PARAM_WITHDRAW_DELAY) ok = v >= 60 && v <= 365 days;
        else if (param == PARAM_REPORTER_SHARE_BPS) ok = v <= BPS;
        else if (param == PARAM_SLASH_BPS) ok = v >= 1 && v <= BPS;
        else revert InvalidProposal("param");
        if (!ok) revert InvalidProposal("value");
    }

    function _set(uint8 param, uint256 v) private {
        _checkBounds(param, v);
        if (param == PARAM_MIN_STAKE) p.minStake = uint96(v);
        else if (param == PARAM_PASS_BPS) p.passBps = uint16(v);
        else if (param == PARAM_QUORUM_BPS) p.quorumBps = uint16(v);
        else if (param == PARAM_VOTING_PERIOD) p.votingPeriod = uint32(v);
        else if (param == PARAM_EXECUTION_DELAY) p.executionDelay = uint32(v);
        else if (param == PARAM_EXECUTION_WINDOW) p.executionWindow = uint32(v);
        else if (param == PARAM_WITHDRAW_DELAY) p.withdrawDelay = uint32(v);
        else if (param == PARAM_REPORTER_SHARE_BPS) p.reporterShareBps = uint16(v);
        else p.slashBps = uint16(v);
        emit ParameterChanged(param, v);
    }

    /// @dev Check an envelope's header fields and EIP-191 signature; reverts with the named error of the first
    ///      check that fails. Returns its sender (= the signer).
    function _verifyEnvelope(SignedEnvelope calldata e) private view returns (address sender) {
        if (e.federation != address(ledger_)) revert WrongFederation(e.federation);
        if (e.chainId != block.chainid) revert WrongChain(e.chainId);
        sender = e.sender;
        bytes32 header = keccak256(
            abi.encode(ENVELOPE_TAG, e.federation, e.chainId, e.round, sender, e.updateHash, e.cidHash, e.restHash)
        );
        _requireSigner(MessageHashUtils.toEthSignedMessageHash(header), e.v, e.r, e.s, sender);
    }

    /// @dev Reverts `InvalidSignature(signer)` unless (v, r, s) is `signer`'s canonical signature of `hash`.
    function _requireSigner(bytes32 hash, uint8 v, bytes32 r, bytes32 s, address signer) private pure {
        (address recovered, ECDSA.RecoverError err,) = ECDSA.tryRecover(hash, v, r, s);
        if (err != ECDSA.RecoverError.NoError || recovered != signer) revert InvalidSignature(signer);
    }

    /// @dev The (round, update hash) of the `commit` call to this federation's ledger that `signer` signed in
    ///      `t`; reverts with the named error of the first check that fails.
    function _verifyCommit(SignedTx calldata t, address signer)
        private
        view
        returns (uint256 round, bytes32 updateHash)
    {
        if (t.yParity > 1) revert InvalidSignature(signer);
        _requireSigner(keccak256(t.payload), t.yParity + 27, t.r, t.s, signer);
        SignedTransaction.Call memory c = SignedTransaction.decode(t.payload);
        if (c.hasChainId && c.chainId != block.chainid) revert WrongChain(c.chainId);
        if (c.to != address(ledger_)) revert WrongFederation(c.to);
        uint256 at = c.dataOffset; // selector, round, updateHash: the first 68 bytes of the call data
        if (c.dataLength < 68 || bytes4(SignedTransaction.word(t.payload, at)) != IFederationLedger.commit.selector) {
            revert NotCommitCall();
        }
        round = uint256(SignedTransaction.word(t.payload, at + 4));
        updateHash = SignedTransaction.word(t.payload, at + 36);
    }

    /// @dev One slash per (member, round), whatever the offence (round 0: never a ledger round).
    function _markSlashed(address signer, uint256 round) private {
        uint256 word = slashedBits[signer][round >> 8];
        uint256 bit = 1 << (round & 255);
        if (word & bit != 0) revert AlreadySlashed(signer, round);
        slashedBits[signer][round >> 8] = word | bit;
    }

    /// @dev Take `slashBps` of `signer`'s stake for `offence` in `round`, pay the reporter share, remove it from
    ///      the ledger when what is left is below `minStake`.
    function _slash(address signer, uint256 round, uint8 offence) private {
        Stake memory st = stakes[signer];
        bool member = ledger_.memberKey(signer) != bytes32(0);
        // a removed member stays slashable while its stake is locked; nothing left to take = not slashable
        if (!member && (!st.bonded || st.amount == 0)) revert NotMember(signer);

        uint256 amount = (uint256(st.amount) * p.slashBps) / BPS;
        uint256 reward = (amount * p.reporterShareBps) / BPS;
        st.amount -= uint96(amount);
        bool removed = member && st.amount < p.minStake;
        if (removed) {
            ledger_.removeMember(signer);
            st.unlockAt = uint40(block.timestamp + p.withdrawDelay);
        }
        stakes[signer] = st;
        slashedPlusOne += amount - reward;
        emit Slashed(signer, round, offence, msg.sender, amount, reward, removed);
        if (reward > 0) _pay(msg.sender, reward);
    }

    function _pay(address to, uint256 amount) private {
        (bool ok,) = to.call{value: amount}("");
        if (!ok) revert TransferFailed(to, amount);
    }
}
