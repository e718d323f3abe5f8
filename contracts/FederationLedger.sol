// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {MerkleProof} from "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol";
import {IFederationLedger} from "./IFederationLedger.sol";
import {ReputationMath} from "./ReputationMath.sol";

/// @title FederationLedger
/// @notice The on-chain ledger of one decentralized federated-learning federation: membership, parameters,
///         per-round commitments of model updates, reputation-weighted votes on the aggregate, finalization,
///         and Merkle-proof reward claims (pull payment).
/// @dev Storage holds only what the contract itself must check; everything an auditor needs to rebuild a round
///      (CIDs, excluded sets, privacy spent, ...) travels in events. Per-member state is one packed slot; the open
///      round lives in the packed global `state` slot, so commits and votes touch O(1) slots and finalization is
///      O(1) in the number of members. Reputation is updated lazily in the member's own next commit or vote.
///      Late votes: a member may still vote for a round that others already finalized, until that round's
///      original vote deadline. A late vote is checked like any vote and recorded (`Voted` with `late = true`),
///      but never touches the tally, the finalized result or the round sequence; it only settles the voter's
///      reputation for that round (outcome 1 iff it voted the finalized digest and did not exclude itself), so
///      an honest member is not penalised for being slower than the majority.
///      Member admission is by the owner (the deployer): a federation is a consortium whose membership is agreed
///      off chain (contracts, regulation), and an owner-only path keeps admission auditable via events without
///      a second voting protocol on chain.
contract FederationLedger is IFederationLedger {
    // ------------------------------------------------------------------ types

    /// @dev One slot per member (248 bits).
    struct MemberState {
        uint64 weight;
        uint32 lastCommitRound;
        uint32 lastVoteRound;
        uint32 finSeen; // value of state.finalizedCount when reputation was last settled
        uint8 flags; // FLAG_MEMBER | FLAG_VOTE_PENDING | FLAG_SELF_EXCLUDED
        bytes10 voteDigestPrefix; // first 10 bytes of the digest voted in lastVoteRound
    }

    /// @dev The open round and membership totals, one slot (240 bits). The open round keeps the members it
    ///      opened with: `roundMembers` (its commit phase ends when they all committed) and `totalWeight` (the
    ///      quorum's base) change while it runs only by removals and reputation updates; a member admitted while
    ///      it is open counts from the next round (`joinedWeight`): memberCount - roundMembers of them are waiting
    ///      (a removal lowers both counts, or only memberCount for such a newcomer). At most 2^16 - 1 members.
    ///      The commit deadline (not the start), the vote period and the quorum of the open round are kept here so
    ///      that neither commit nor a non-finalizing vote reads the parameter slot.
    struct State {
        uint32 currentRound;
        uint32 commitDeadline;
        uint16 commitCount;
        uint16 roundMembers;
        uint16 memberCount; // every member, including those admitted while the open round runs
        uint64 totalWeight;
        uint32 finalizedCount;
        uint32 votePeriod;
        uint16 quorumBps;
    }

    /// @dev Written once when a round closes (finalized or failed), one slot (256 bits). The round's periods are
    ///      kept with it: a later parameter change must not move its late-vote or claim-window deadlines.
    struct RoundRecord {
        uint8 status;
        bytes10 digestPrefix; // first 10 bytes of the finalized digest
        uint40 start;
        uint32 commitCount;
        uint32 finIndex; // rounds finalized before this one (state.finalizedCount before it); finalized rounds only
        uint32 commitPeriod;
        uint32 votePeriod;
    }

    /// @dev The round parameters a passed proposal may change (`setRoundParams`), one slot (248 bits) that commit,
    ///      vote and closeFailedRound read once. `roundParams` holds the open round's; `paramsHistory` every set
    ///      with the first round it applies to (`since`). A set applies from the next round to open, so the open
    ///      round keeps its periods, quorum and pool.
    struct RoundParams {
        uint96 rewardPerRound;
        uint32 commitPeriod;
        uint32 votePeriod;
        uint16 quorumBps;
        uint16 f;
        uint16 ruleParam;
        uint32 since; // first round these apply to
        bool pending; // in roundParams: the last paramsHistory entry applies from the next round
    }

    /// @dev One set of round parameters and its rule name (2 slots for a rule name up to 31 bytes).
    struct ParamsEntry {
        RoundParams p;
        string rule;
    }

    /// @dev Reward accounting and the model round, one slot (256 bits), written once per round close.
    ///      Invariant: balance >= reserved + roundPool. Only finalization reserves, one round is open at a time,
    ///      and while it is open balance - reserved never decreases (funding adds, a claim lowers both, a sweep
    ///      lowers reserved), so the pool fixed at open can always be reserved at finalization.
    struct Funds {
        uint128 reserved; // wei owed to finalized rounds' reward trees (sum of their `unclaimed`)
        uint32 modelRound; // round whose aggregate is the current global model (0 = genesis)
        uint96 roundPool; // the open round's pool, fixed when it opened
    }

    /// @dev What `claim` needs of a finalized round, in one slot so a claim reads one cold slot per round:
    ///      the rewards root's high 160 bits (forging a proof for them takes ~2^160 hashes, as for an address)
    ///      and the unclaimed rest of the round's pool. The full root is in the RoundFinalized event.
    struct Payout {
        bytes20 rootHigh;
        uint96 unclaimed;
    }

    /// @notice Round status as reported by `roundInfo`.
    uint8 internal constant STATUS_NONE = 0; // not opened yet
    uint8 internal constant STATUS_OPEN = 1;
    uint8 internal constant STATUS_FINALIZED = 2;
    uint8 internal constant STATUS_FAILED = 3;

    /// @notice Fixed-point unit of voting weight (1.0); reputation converges to it for always-agreeing members.
    uint64 internal constant WEIGHT_ONE = ReputationMath.WEIGHT_ONE;

    uint8 private constant FLAG_MEMBER = 1;
    uint8 private constant FLAG_VOTE_PENDING = 2;
    uint8 private constant FLAG_SELF_EXCLUDED = 4;
    /// @dev A removed member: the only flag it keeps. It stays in `memberList` (removal is O(1); `members()`
    ///      filters), so a member's address is in the list iff it has FLAG_MEMBER or FLAG_REMOVED.
    uint8 private constant FLAG_REMOVED = 8;
    /// @dev Admitted while round `lastVoteRound` was open (admission sets lastCommitRound = lastVoteRound = that
    ///      round): it neither commits nor votes in that round (CommitClosed / VotingClosed) and its reputation
    ///      skips that round. Cleared by its first vote or settlement.
    uint8 private constant FLAG_NEW = 16;
    uint256 private constant BPS = ReputationMath.BPS;
    /// @dev Longest multiaddr `announce` accepts, in bytes (a /dns4/<name>/tcp/<port>/p2p/<peer id> is ~100).
    ///      Not a public getter: it would cost ~190 bytes of runtime code (~40k deploy gas) for a fixed number.
    uint256 private constant MAX_MULTIADDR_LENGTH = 256;
    /// @notice Highest initial weight a member can be admitted with (1000.0): totalWeight (uint64) cannot overflow
    ///         before ~1.8e10 admissions, so admission never panics (2^64 - 1 used to: Panic(0x11)).
    uint64 public constant MAX_MEMBER_WEIGHT = 1000 * ReputationMath.WEIGHT_ONE;
    /// @notice sampleCap of a federation deployed with sampleCap = 0: FedAvg weights use min(numSamples, cap), so
    ///         a member's self-reported sample count can never exceed it (2^32 - 1 would otherwise outweigh any
    ///         honest federation). Choose a cap near the largest honest local dataset to bound it tighter.
    uint32 public constant DEFAULT_SAMPLE_CAP = 65_536;
    /// @notice Rewards of a finalized round stay reserved for claims at least this long after its vote deadline;
    ///         then anyone may `sweep` the unclaimed rest back to the pool.
    uint256 public constant CLAIM_WINDOW = 365 days;
    /// @dev Longest `rule` name and genesis CID accepted at deployment, in bytes.
    uint256 private constant MAX_RULE_LENGTH = 64;
    uint256 private constant MAX_CID_LENGTH = 256;
    /// @dev Largest codec fixed-point scale (`consensus.codec.MAX_SCALE_BITS`).
    uint8 private constant MAX_SCALE_BITS = 30;

    // ------------------------------------------------------------------ storage

    /// @notice The only account allowed to admit and remove members and auditors: the deployer until it calls
    ///         `transferOwnership` (devnet/deploy.py hands it to the FederationGovernor at deployment).
    address public owner;
    /// @dev Weight of the members admitted while the open round runs; it joins `state.totalWeight` when the next
    ///      round opens (packed with `owner`, which admission and removal read anyway).
    uint64 internal joinedWeight;
    bytes32 internal immutable modelSpecHash;
    bytes32 internal immutable genesisModelHash;
    uint8 internal immutable scaleBits;
    uint16 internal immutable alphaBps;
    uint32 internal immutable sampleCap;
    string internal genesisModelCid;
    /// @dev The open round's changeable parameters (see `RoundParams`); the rule name is in `paramsHistory`.
    RoundParams internal roundParams;
    ParamsEntry[] internal paramsHistory;

    State internal state;
    Funds internal funds;
    /// @notice sha256 of the current global model's canonical bytes.
    bytes32 internal modelHash;

    mapping(address => MemberState) internal memberState;
    mapping(address => bytes32) public memberKey;
    address[] internal memberList;
    mapping(address => bytes32) public auditorKey;
    address[] internal auditorList;

    mapping(uint256 => RoundRecord) internal roundRecord;
    mapping(uint256 => Payout) internal payout;
    /// @notice Vote weight per (round, digest) while the round is open. The vote that finalizes a round clears its
    ///         digest's entry instead of raising it (the round takes no more on-time votes, and the weights are in
    ///         the `Voted` events): the storage refund pays for the finalization's read of the parameter slot.
    mapping(uint256 => mapping(bytes32 => uint256)) public tally;
    mapping(address => mapping(uint256 => uint256)) internal claimedBits;

    bool transient locked;

    modifier onlyOwner() {
        if (msg.sender != owner) revert Unauthorized(msg.sender);
        _;
    }

    modifier nonReentrant() {
        if (locked) revert ReentrantCall();
        locked = true;
        _;
        locked = false;
    }

    // ------------------------------------------------------------------ setup

    /// @notice Create a federation; `msg.value` funds the reward pool. Round 1 opens immediately.
    ///         Every bound reverts with InvalidParameter(<name>): members non-empty with positive total weight
    ///         ("members", "totalWeight"), each as in `admitMember`; rule 1..64 bytes; f < number of members;
    ///         5000 <= quorumBps < 10000; commitPeriod, votePeriod > 0; rewardPerRound < 2^96; genesisModelHash
    ///         non-zero; genesisModelCid 1..256 bytes; scaleBits <= 30; alphaBps <= 10000; sampleCap 0 is stored
    ///         as DEFAULT_SAMPLE_CAP. Auditors as in `registerAuditor`.
    /// @param params federation parameters
    /// @param members_ initial members (address, X25519 key, initial weight)
    /// @param auditors_ initial auditors (address, X25519 key)
    constructor(Params memory params, MemberInit[] memory members_, AuditorInit[] memory auditors_) payable {
        if (members_.length == 0) revert InvalidParameter("members");
        RoundParamsUpdate memory initial = RoundParamsUpdate({
            rule: params.rule,
            ruleParam: params.ruleParam,
            f: params.f,
            quorumBps: params.quorumBps,
            commitPeriod: params.commitPeriod,
            votePeriod: params.votePeriod,
            rewardPerRound: params.rewardPerRound
        });
        RoundParams memory first = _checkRoundParams(initial, members_.length, 1);
        if (params.alphaBps > BPS) revert InvalidParameter("alphaBps");
        if (params.genesisModelHash == bytes32(0)) revert InvalidParameter("genesisModelHash");
        uint256 cidLength = bytes(params.genesisModelCid).length;
        if (cidLength == 0 || cidLength > MAX_CID_LENGTH) revert InvalidParameter("genesisModelCid");
        if (params.scaleBits > MAX_SCALE_BITS) revert InvalidParameter("scaleBits");
        owner = msg.sender;
        roundParams = first;
        paramsHistory.push(ParamsEntry(first, params.rule));
        modelSpecHash = params.modelSpecHash;
        genesisModelHash = params.genesisModelHash;
        genesisModelCid = params.genesisModelCid;
        scaleBits = params.scaleBits;
        alphaBps = params.alphaBps;
        sampleCap = params.sampleCap == 0 ? DEFAULT_SAMPLE_CAP : params.sampleCap;
        modelHash = params.genesisModelHash;

        State memory s;
        for (uint256 i = 0; i < members_.length; ++i) {
            _admit(s, members_[i].account, members_[i].encKey, members_[i].weight, false);
        }
        for (uint256 i = 0; i < auditors_.length; ++i) {
            _register(auditors_[i].account, auditors_[i].encKey);
        }
        if (s.totalWeight == 0) revert InvalidParameter("totalWeight");
        s.currentRound = 1;
        s.commitDeadline = uint32(block.timestamp + first.commitPeriod);
        (s.votePeriod, s.quorumBps) = (first.votePeriod, first.quorumBps);
        _storeState(s);
        if (msg.value > 0) emit Funded(msg.sender, msg.value, address(this).balance);
        uint256 pool = _nextPool(0, first.rewardPerRound);
        funds = Funds({reserved: 0, modelRound: 0, roundPool: uint96(pool)});
        _emitOpened(1, block.timestamp, pool, first.commitPeriod, first.votePeriod);
    }

    // ------------------------------------------------------------------ admin

    /// @inheritdoc IFederationLedger
    function admitMember(address account, bytes32 encKey, uint64 weight) external onlyOwner {
        State memory s = _loadState();
        _admit(s, account, encKey, weight, true);
        _storeState(s);
    }

    /// @inheritdoc IFederationLedger
    function registerAuditor(address account, bytes32 encKey) external onlyOwner {
        _register(account, encKey);
    }

    /// @notice `member` was removed; `totalWeight` after it. It stops committing and voting at once; a vote it
    ///         already cast in the open round stays in that round's tally.
    event MemberRemoved(address indexed member, uint64 weight, uint256 totalWeight);
    /// @notice `auditor` was removed: update blobs are no longer sealed to it.
    event AuditorRemoved(address indexed auditor);
    /// @notice Ownership (admission and removal rights) moved from `previousOwner` to `newOwner`.
    event OwnershipTransferred(address indexed previousOwner, address indexed newOwner);

    /// @notice Hand the admin rights to `newOwner` (owner only), e.g. the federation's governor.
    function transferOwnership(address newOwner) external onlyOwner {
        if (newOwner == address(0)) revert InvalidParameter("owner");
        emit OwnershipTransferred(owner, newOwner);
        owner = newOwner;
    }

    /// @notice Remove member `account` (owner only). Its weight leaves the total weight now, and it leaves the
    ///         open round's members (a commit it made there no longer counts toward closing the commit phase
    ///         early), unless it was admitted while that round is open (it did not count in it). Rewards it
    ///         earned stay claimable (claims need no membership).
    function removeMember(address account) external onlyOwner {
        MemberState memory m = _loadMember(account);
        if (m.flags & FLAG_MEMBER == 0) revert NotMember(account);
        State memory s = _loadState();
        s.memberCount -= 1;
        uint64 pending = joinedWeight;
        if (_joinedNow(m, s.currentRound)) {
            pending -= m.weight;
            joinedWeight = pending;
        } else {
            s.roundMembers -= 1;
            s.totalWeight -= m.weight;
            if (m.lastCommitRound == s.currentRound) s.commitCount -= 1;
        }
        _storeState(s);
        memberState[account] = MemberState(0, 0, 0, 0, FLAG_REMOVED, bytes10(0));
        delete memberKey[account];
        emit MemberRemoved(account, m.weight, s.totalWeight + pending);
    }

    /// @notice Remove auditor `account` (owner only).
    function removeAuditor(address account) external onlyOwner {
        if (auditorKey[account] == bytes32(0)) revert InvalidParameter("account");
        delete auditorKey[account];
        _unlist(auditorList, account);
        emit AuditorRemoved(account);
    }

    /// @inheritdoc IFederationLedger
    function setRoundParams(RoundParamsUpdate calldata u) external onlyOwner {
        State memory s = _loadState();
        uint32 since = s.currentRound + 1;
        RoundParams memory next = _checkRoundParams(u, s.memberCount, since);
        // a second set before `since` opens replaces the first
        if (paramsHistory[paramsHistory.length - 1].p.since != since) paramsHistory.push();
        ParamsEntry storage e = paramsHistory[paramsHistory.length - 1];
        e.p = next;
        e.rule = u.rule;
        roundParams.pending = true;
        emit RoundParamsChanged(
            since, u.rule, u.ruleParam, u.f, u.quorumBps, u.commitPeriod, u.votePeriod, u.rewardPerRound
        );
    }

    /// @inheritdoc IFederationLedger
    function fund() external payable {
        emit Funded(msg.sender, msg.value, address(this).balance);
    }

    /// @notice Plain ETH transfers fund the reward pool too.
    receive() external payable {
        emit Funded(msg.sender, msg.value, address(this).balance);
    }

    // ------------------------------------------------------------------ protocol

    /// @inheritdoc IFederationLedger
    function commit(
        uint256 round,
        bytes32 updateHash,
        string calldata cid,
        uint32 numSamples,
        uint64 epsilonE6,
        uint64 deltaE18
    ) external {
        MemberState memory m = _loadMember(msg.sender);
        if (m.flags & FLAG_MEMBER == 0) revert NotMember(msg.sender);
        // the member's own signed transaction is the call: it proves what was committed (slashCommitMismatch)
        if (msg.sender != tx.origin || msg.sender.code.length != 0) revert NotDirectCall(msg.sender);
        State memory s = _loadState();
        if (round != s.currentRound) revert RoundNotOpen(round);
        if (m.lastCommitRound == round) {
            if (_joinedNow(m, round)) revert CommitClosed(round); // admitted while this round is open
            revert AlreadyCommitted(round, msg.sender);
        }
        if (block.timestamp >= s.commitDeadline || s.commitCount >= s.roundMembers) revert CommitClosed(round);
        _settleForCommit(m, s, round);
        m.lastCommitRound = uint32(round);
        s.commitCount += 1;
        _storeMember(msg.sender, m);
        _storeState(s);
        emit Committed(round, msg.sender, updateHash, cid, numSamples, epsilonE6, deltaE18);
    }

    /// @inheritdoc IFederationLedger
    function vote(
        uint256 round,
        bytes32 digest,
        bytes32 aggregateHash,
        string calldata aggregateCid,
        bytes32 rewardsRoot,
        string calldata rewardsCid,
        address[] calldata excluded
    ) external {
        MemberState memory m = _loadMember(msg.sender);
        if (m.flags & FLAG_MEMBER == 0) revert NotMember(msg.sender);
        State memory s = _loadState();
        if (round != s.currentRound) {
            _lateVote(m, s, round, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded);
            return;
        }
        if (block.timestamp < s.commitDeadline && s.commitCount < s.roundMembers) revert VotingNotOpen(round);
        if (block.timestamp >= uint256(s.commitDeadline) + s.votePeriod) revert VotingClosed(round);
        if (m.lastVoteRound == round) {
            if (_joinedNow(m, round)) revert VotingClosed(round); // admitted while this round is open
            revert AlreadyVoted(round, msg.sender);
        }

        (bool selfExcluded, bytes32 excludedHash) = _checkExcluded(excluded);
        bytes32 expected = keccak256(abi.encodePacked(aggregateHash, rewardsRoot, excludedHash));
        if (expected != digest) revert DigestMismatch(expected, digest);

        _settle(m, s, s.finalizedCount, msg.sender);
        m.lastVoteRound = uint32(round);
        m.voteDigestPrefix = bytes10(digest);
        m.flags = (m.flags & FLAG_MEMBER) | FLAG_VOTE_PENDING | (selfExcluded ? FLAG_SELF_EXCLUDED : 0);
        _storeMember(msg.sender, m);

        uint256 weightFor = tally[round][digest] + m.weight;
        bool finalizes = weightFor * BPS > uint256(s.quorumBps) * s.totalWeight;
        tally[round][digest] = finalizes ? 0 : weightFor;
        emit Voted(
            round, msg.sender, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded, m.weight, false
        );

        if (finalizes) {
            // the pool fixed at open; an empty tree (root 0) pays nothing, so it reserves nothing
            Funds memory fu = funds;
            uint256 pool = fu.roundPool;
            uint256 reservedNow = fu.reserved;
            if (rewardsRoot != bytes32(0)) {
                reservedNow += pool;
                payout[round] = Payout({rootHigh: bytes20(rewardsRoot), unclaimed: uint96(pool)});
            }
            _record(round, STATUS_FINALIZED, bytes10(digest), s, s.finalizedCount);
            uint256 nextPool = _nextPool(reservedNow, _nextReward());
            funds = Funds({reserved: uint128(reservedNow), modelRound: uint32(round), roundPool: uint96(nextPool)});
            modelHash = aggregateHash;
            emit RoundFinalized(
                round, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded, weightFor, s.totalWeight, pool
            );
            s.finalizedCount += 1;
            _openNext(s, round, nextPool);
        }
        _storeState(s);
    }

    /// @inheritdoc IFederationLedger
    function closeFailedRound(uint256 round) external {
        State memory s = _loadState();
        if (round != s.currentRound) revert RoundNotOpen(round);
        uint256 voteDeadline = uint256(s.commitDeadline) + s.votePeriod;
        if (block.timestamp < voteDeadline) revert VoteDeadlineNotReached(round, voteDeadline);
        _record(round, STATUS_FAILED, bytes10(0), s, 0);
        emit RoundFailed(round, msg.sender);
        // the failed round reserved nothing; the next pool counts what was funded meanwhile
        uint256 nextPool = _nextPool(funds.reserved, _nextReward());
        funds.roundPool = uint96(nextPool);
        _openNext(s, round, nextPool);
        _storeState(s);
    }

    /// @inheritdoc IFederationLedger
    function claim(uint256[] calldata rounds, uint256[] calldata amounts, bytes32[][] calldata proofs)
        external
        nonReentrant
    {
        if (rounds.length != amounts.length || rounds.length != proofs.length || rounds.length == 0) {
            revert LengthMismatch();
        }
        uint256 total;
        for (uint256 i = 0; i < rounds.length; ++i) {
            uint256 r = rounds[i];
            uint256 amount = amounts[i];
            Payout memory p = payout[r];
            // only finalization with a non-empty tree writes a payout (an empty tree pays and reserves nothing)
            if (p.rootHigh == bytes20(0) && p.unclaimed == 0) revert NotFinalized(r);
            uint256 bit = 1 << (r & 255);
            uint256 word = claimedBits[msg.sender][r >> 8];
            if (word & bit != 0) revert AlreadyClaimed(r, msg.sender);
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(r, msg.sender, amount))));
            if (bytes20(MerkleProof.processProofCalldata(proofs[i], leaf)) != p.rootHigh) revert InvalidProof(r);
            if (amount > p.unclaimed) revert PoolExceeded(r, amount, p.unclaimed);
            claimedBits[msg.sender][r >> 8] = word | bit;
            payout[r] = Payout({rootHigh: p.rootHigh, unclaimed: p.unclaimed - uint96(amount)});
            total += amount;
        }
        funds.reserved -= uint128(total);
        emit Claimed(msg.sender, rounds, amounts, total);
        (bool ok,) = msg.sender.call{value: total}("");
        if (!ok) revert TransferFailed(msg.sender, total);
    }

    /// @inheritdoc IFederationLedger
    function sweep(uint256 round) external {
        Payout memory p = payout[round];
        // only finalization with a non-empty tree writes a payout, so unclaimed > 0 implies a finalized round
        if (p.unclaimed == 0) revert NothingToSweep(round);
        RoundRecord memory rec = _loadRecord(round);
        uint256 closesAt = uint256(rec.start) + rec.commitPeriod + rec.votePeriod + CLAIM_WINDOW;
        if (block.timestamp < closesAt) revert ClaimWindowOpen(round, closesAt);
        // effects only: the ETH stays in the contract, unreserved, for later rounds' pools (no interaction)
        payout[round].unclaimed = 0;
        funds.reserved -= p.unclaimed;
        emit Swept(round, msg.sender, p.unclaimed);
    }

    // ------------------------------------------------------------------ discovery

    /// @inheritdoc IFederationLedger
    function announce(string calldata multiaddr) external {
        if (memberState[msg.sender].flags & FLAG_MEMBER == 0) revert NotMember(msg.sender);
        uint256 length = bytes(multiaddr).length;
        if (length == 0 || length > MAX_MULTIADDR_LENGTH) revert InvalidMultiaddrLength(length);
        emit MemberAnnounced(msg.sender, multiaddr);
    }

    // ------------------------------------------------------------------ views

    /// @inheritdoc IFederationLedger
    function paramsForRound(uint256 r) public view returns (Params memory p) {
        uint256 i = paramsHistory.length;
        while (i > 1 && paramsHistory[i - 1].p.since > r) --i;
        ParamsEntry storage e = paramsHistory[i - 1];
        RoundParams storage rp = e.p;
        p = Params({
            rule: e.rule,
            ruleParam: rp.ruleParam,
            f: rp.f,
            quorumBps: rp.quorumBps,
            commitPeriod: rp.commitPeriod,
            votePeriod: rp.votePeriod,
            rewardPerRound: rp.rewardPerRound,
            modelSpecHash: modelSpecHash,
            genesisModelHash: genesisModelHash,
            genesisModelCid: genesisModelCid,
            scaleBits: scaleBits,
            alphaBps: alphaBps,
            sampleCap: sampleCap
        });
    }

    /// @notice Wei reserved for unclaimed rewards of finalized rounds.
    function reserved() external view returns (uint128) {
        return funds.reserved;
    }

    /// @inheritdoc IFederationLedger
    function currentRound() external view returns (uint256) {
        return state.currentRound;
    }

    /// @inheritdoc IFederationLedger
    function totals() external view returns (uint256 memberCount, uint256 totalWeight, uint256 finalizedCount) {
        State memory s = _loadState();
        return (s.memberCount, s.totalWeight + joinedWeight, s.finalizedCount);
    }

    /// @inheritdoc IFederationLedger
    function roundInfo(uint256 r)
        external
        view
        returns (
            uint8 status,
            uint256 start,
            uint256 commitDeadline,
            uint256 voteDeadline,
            uint256 commitCount,
            uint256 unclaimed,
            bytes20 rootHigh,
            bytes10 digestPrefix,
            uint256 memberCount
        )
    {
        State memory s = _loadState();
        uint256 votePeriod;
        if (r == s.currentRound) {
            RoundParams storage rp = roundParams;
            status = STATUS_OPEN;
            commitDeadline = s.commitDeadline;
            start = commitDeadline - rp.commitPeriod;
            commitCount = s.commitCount;
            unclaimed = funds.roundPool;
            votePeriod = rp.votePeriod;
            memberCount = s.roundMembers;
        } else if (r == 0 || r > s.currentRound) {
            return (STATUS_NONE, 0, 0, 0, 0, 0, bytes20(0), bytes10(0), 0);
        } else {
            RoundRecord memory rec = _loadRecord(r);
            Payout memory p = payout[r];
            (status, start, commitCount, digestPrefix) = (rec.status, rec.start, rec.commitCount, rec.digestPrefix);
            (unclaimed, rootHigh) = (p.unclaimed, p.rootHigh);
            (commitDeadline, votePeriod) = (start + rec.commitPeriod, rec.votePeriod);
        }
        voteDeadline = commitDeadline + votePeriod;
    }

    /// @inheritdoc IFederationLedger
    function members() external view returns (address[] memory) {
        address[] memory out = new address[](state.memberCount);
        uint256 k;
        for (uint256 i = 0; i < memberList.length; ++i) {
            address a = memberList[i];
            if (memberState[a].flags & FLAG_MEMBER != 0) out[k++] = a;
        }
        return out;
    }

    /// @inheritdoc IFederationLedger
    function auditors() external view returns (address[] memory) {
        return auditorList;
    }

    /// @inheritdoc IFederationLedger
    function memberInfo(address account)
        external
        view
        returns (
            bool isMember,
            bytes32 encKey,
            uint64 weight,
            uint32 lastCommitRound,
            uint32 lastVoteRound,
            uint32 finSeen,
            bool votePending,
            bool selfExcluded,
            bytes10 voteDigestPrefix
        )
    {
        MemberState memory m = _loadMember(account);
        return (
            m.flags & FLAG_MEMBER != 0,
            memberKey[account],
            m.weight,
            m.lastCommitRound,
            m.lastVoteRound,
            m.finSeen,
            m.flags & FLAG_VOTE_PENDING != 0,
            m.flags & FLAG_SELF_EXCLUDED != 0,
            m.voteDigestPrefix
        );
    }

    /// @inheritdoc IFederationLedger
    function effectiveWeight(address account) external view returns (uint64) {
        MemberState memory m = _loadMember(account);
        (uint64 w,,,) = _reputation(m, state.finalizedCount);
        return w;
    }

    /// @inheritdoc IFederationLedger
    function model() external view returns (bytes32 hash, uint256 round) {
        return (modelHash, funds.modelRound);
    }

    /// @inheritdoc IFederationLedger
    function isClaimed(address account, uint256 round) external view returns (bool) {
        return claimedBits[account][round >> 8] & (1 << (round & 255)) != 0;
    }

    // ------------------------------------------------------------------ internals

    /// @dev The state slot as one word: the compiler's struct copies read and write a packed slot once per field
    ///      (three more warm SLOAD/SSTORE pairs per commit or vote, ~600 gas); these read and write it once, in
    ///      assembly because the field-by-field Solidity version is not inlined. A memory struct holds one field
    ///      per 32-byte word in declaration order; the slot packs them from the low-order bits in the same order
    ///      (widths 32, 32, 16, 16, 16, 64, 32, 32, 16), so `state.x` reads elsewhere agree.
    function _loadState() private view returns (State memory s) {
        assembly ("memory-safe") {
            s := mload(0x40) // a fresh struct: every field is written below, so no zeroing is needed
            mstore(0x40, add(s, 0x120))
            let w := sload(state.slot)
            mstore(s, and(w, 0xffffffff))
            mstore(add(s, 0x20), and(shr(32, w), 0xffffffff))
            mstore(add(s, 0x40), and(shr(64, w), 0xffff))
            mstore(add(s, 0x60), and(shr(80, w), 0xffff))
            mstore(add(s, 0x80), and(shr(96, w), 0xffff))
            mstore(add(s, 0xa0), and(shr(112, w), 0xffffffffffffffff))
            mstore(add(s, 0xc0), and(shr(176, w), 0xffffffff))
            mstore(add(s, 0xe0), and(shr(208, w), 0xffffffff))
            mstore(add(s, 0x100), shr(240, w))
        }
    }

    function _storeState(State memory s) private {
        assembly ("memory-safe") {
            let w := and(mload(s), 0xffffffff)
            w := or(w, shl(32, and(mload(add(s, 0x20)), 0xffffffff)))
            w := or(w, shl(64, and(mload(add(s, 0x40)), 0xffff)))
            w := or(w, shl(80, and(mload(add(s, 0x60)), 0xffff)))
            w := or(w, shl(96, and(mload(add(s, 0x80)), 0xffff)))
            w := or(w, shl(112, and(mload(add(s, 0xa0)), 0xffffffffffffffff)))
            w := or(w, shl(176, and(mload(add(s, 0xc0)), 0xffffffff)))
            w := or(w, shl(208, and(mload(add(s, 0xe0)), 0xffffffff)))
            w := or(w, shl(240, and(mload(add(s, 0x100)), 0xffff)))
            sstore(state.slot, w)
        }
    }

    /// @dev A member's slot as one word, for the same reason as `_loadState` (widths 64, 32, 32, 32, 8 and the
    ///      bytes10 digest prefix, which a memory struct holds left-aligned and the slot as its 80-bit value).
    function _loadMember(address account) private view returns (MemberState memory m) {
        assembly ("memory-safe") {
            m := mload(0x40)
            mstore(0x40, add(m, 0xc0))
            mstore(0, account)
            mstore(32, memberState.slot)
            let w := sload(keccak256(0, 64))
            mstore(m, and(w, 0xffffffffffffffff))
            mstore(add(m, 0x20), and(shr(64, w), 0xffffffff))
            mstore(add(m, 0x40), and(shr(96, w), 0xffffffff))
            mstore(add(m, 0x60), and(shr(128, w), 0xffffffff))
            mstore(add(m, 0x80), and(shr(160, w), 0xff))
            mstore(add(m, 0xa0), shl(176, and(shr(168, w), 0xffffffffffffffffffff)))
        }
    }

    function _storeMember(address account, MemberState memory m) private {
        assembly ("memory-safe") {
            let w := and(mload(m), 0xffffffffffffffff)
            w := or(w, shl(64, and(mload(add(m, 0x20)), 0xffffffff)))
            w := or(w, shl(96, and(mload(add(m, 0x40)), 0xffffffff)))
            w := or(w, shl(128, and(mload(add(m, 0x60)), 0xffffffff)))
            w := or(w, shl(160, and(mload(add(m, 0x80)), 0xff)))
            w := or(w, shl(168, shr(176, mload(add(m, 0xa0)))))
            mstore(0, account)
            mstore(32, memberState.slot)
            sstore(keccak256(0, 64), w)
        }
    }

    /// @dev `duringRound`: admitted while round s.currentRound is open, so it counts from the next round on.
    function _admit(State memory s, address account, bytes32 encKey, uint64 weight, bool duringRound) private {
        if (account == address(0)) revert InvalidParameter("account");
        uint8 flags = memberState[account].flags;
        if (flags & FLAG_MEMBER != 0) revert AlreadyMember(account);
        // A member nobody can seal to would make every honest peer's seal fail: refuse it at admission.
        if (encKey == bytes32(0)) revert InvalidParameter("encKey");
        if (weight > MAX_MEMBER_WEIGHT) revert InvalidParameter("weight");
        if (s.memberCount == type(uint16).max) revert InvalidParameter("members");
        uint32 joinedIn = duringRound ? s.currentRound : 0;
        memberState[account] = MemberState({
            weight: weight,
            lastCommitRound: joinedIn,
            lastVoteRound: joinedIn,
            finSeen: s.finalizedCount,
            flags: duringRound ? FLAG_MEMBER | FLAG_NEW : FLAG_MEMBER,
            voteDigestPrefix: bytes10(0)
        });
        memberKey[account] = encKey;
        if (flags & FLAG_REMOVED == 0) memberList.push(account); // a removed member is still listed
        s.memberCount += 1;
        uint64 pending = joinedWeight;
        if (duringRound) {
            pending += weight;
            joinedWeight = pending;
        } else {
            s.roundMembers += 1;
            s.totalWeight += weight;
        }
        emit MemberAdmitted(account, encKey, weight, s.totalWeight + pending);
    }

    /// @dev `m` was admitted while `round` (the open round) is open: it does not count in it.
    function _joinedNow(MemberState memory m, uint256 round) private pure returns (bool) {
        return m.flags & FLAG_NEW != 0 && m.lastVoteRound == round;
    }

    /// @dev Swap-and-pop `account` out of `list` (present: callers checked it): O(n) reads, removal only.
    function _unlist(address[] storage list, address account) private {
        uint256 last = list.length - 1;
        for (uint256 i = 0; i < last; ++i) {
            if (list[i] == account) {
                list[i] = list[last];
                break;
            }
        }
        list.pop();
    }

    function _register(address account, bytes32 encKey) private {
        if (account == address(0)) revert InvalidParameter("account");
        if (auditorKey[account] != bytes32(0)) revert AlreadyAuditor(account);
        if (encKey == bytes32(0)) revert InvalidParameter("encKey");
        auditorKey[account] = encKey;
        auditorList.push(account);
        emit AuditorRegistered(account, encKey);
    }

    /// @dev The pool of a round opening now: min(rewardPerRound, balance - reserved).
    function _nextPool(uint256 reservedNow, uint256 rewardPerRound) private view returns (uint256) {
        uint256 available = address(this).balance - reservedNow;
        return rewardPerRound < available ? rewardPerRound : available;
    }

    /// @dev Bounds of a round-parameter set (the constructor's, by the same names); returns it packed, applying
    ///      from round `since`. Rule feasibility for the member count is the governor's check, at deployment and
    ///      for every proposal (RuleFeasibility here would push the runtime past the 24,576-byte limit).
    function _checkRoundParams(RoundParamsUpdate memory u, uint256 memberCount, uint32 since)
        private
        pure
        returns (RoundParams memory)
    {
        uint256 ruleLength = bytes(u.rule).length;
        if (ruleLength == 0 || ruleLength > MAX_RULE_LENGTH) revert InvalidParameter("rule");
        if (u.f >= memberCount) revert InvalidParameter("f");
        if (u.quorumBps < 5000 || u.quorumBps >= BPS) revert InvalidParameter("quorumBps");
        // < 2^24 s (194 days): deadlines are 32-bit timestamps (until 2106) that must not wrap
        if (u.commitPeriod == 0 || u.commitPeriod >= 1 << 24) revert InvalidParameter("commitPeriod");
        if (u.votePeriod == 0 || u.votePeriod >= 1 << 24) revert InvalidParameter("votePeriod");
        if (u.rewardPerRound > type(uint96).max) revert InvalidParameter("rewardPerRound");
        return RoundParams({
            rewardPerRound: uint96(u.rewardPerRound),
            commitPeriod: u.commitPeriod,
            votePeriod: u.votePeriod,
            quorumBps: u.quorumBps,
            f: u.f,
            ruleParam: u.ruleParam,
            since: since,
            pending: false
        });
    }

    /// @dev A round record in one read (the layout `_record` writes), for the same reason as `_loadState`.
    function _loadRecord(uint256 round) private view returns (RoundRecord memory rec) {
        assembly ("memory-safe") {
            rec := mload(0x40)
            mstore(0x40, add(rec, 0xe0))
            mstore(0, round)
            mstore(32, roundRecord.slot)
            let w := sload(keccak256(0, 64))
            mstore(rec, and(w, 0xff))
            mstore(add(rec, 0x20), shl(176, and(shr(8, w), 0xffffffffffffffffffff)))
            mstore(add(rec, 0x40), and(shr(88, w), 0xffffffffff))
            mstore(add(rec, 0x60), and(shr(128, w), 0xffffffff))
            mstore(add(rec, 0x80), and(shr(160, w), 0xffffffff))
            mstore(add(rec, 0xa0), and(shr(192, w), 0xffffffff))
            mstore(add(rec, 0xc0), shr(224, w))
        }
    }

    /// @dev Close the open round `round` for good, with the periods it ran under.
    function _record(uint256 round, uint8 status, bytes10 digestPrefix, State memory s, uint32 finIndex) private {
        // one word (the struct write would read-modify-write the slot once per field): widths 8, 80, 40, 32, 32,
        // 32, 32 in declaration order from the low-order bits; the digest prefix as its 80-bit value
        uint256 w = uint256(status) | (uint256(uint80(digestPrefix)) << 8)
            | (uint256(s.commitDeadline - roundParams.commitPeriod) << 88) | (uint256(s.commitCount) << 128)
            | (uint256(finIndex) << 160) | (uint256(roundParams.commitPeriod) << 192) | (uint256(s.votePeriod) << 224);
        assembly ("memory-safe") {
            mstore(0, round)
            mstore(32, roundRecord.slot)
            sstore(keccak256(0, 64), w)
        }
    }

    /// @dev The reward per round of the round opening now, after the open one closed: a pending set takes over
    ///      here (one cold read of it and one write, only when a change applies).
    function _nextReward() private returns (uint256) {
        if (roundParams.pending) roundParams = paramsHistory[paramsHistory.length - 1].p;
        return roundParams.rewardPerRound;
    }

    /// @dev Open round `round + 1` (after `_nextReward`); members admitted during `round` start counting now
    ///      (one more slot read and write, only after such an admission).
    function _openNext(State memory s, uint256 round, uint256 pool) private {
        uint32 commitPeriod = roundParams.commitPeriod;
        s.currentRound = uint32(round + 1);
        s.commitDeadline = uint32(block.timestamp + commitPeriod);
        (s.votePeriod, s.quorumBps) = (roundParams.votePeriod, roundParams.quorumBps);
        s.commitCount = 0;
        if (s.memberCount != s.roundMembers) {
            s.totalWeight += joinedWeight;
            s.roundMembers = s.memberCount;
            joinedWeight = 0;
        }
        _emitOpened(round + 1, block.timestamp, pool, commitPeriod, s.votePeriod);
    }

    function _emitOpened(uint256 round, uint256 start, uint256 pool, uint256 commitPeriod, uint256 votePeriod)
        private
    {
        uint256 commitDeadline = start + commitPeriod;
        emit RoundOpened(round, uint64(start), uint64(commitDeadline), uint64(commitDeadline + votePeriod), pool);
    }

    /// @dev A late vote for the finalized round `round` (< the open round), until its original vote deadline.
    ///      Settles, in order, the finalized rounds before `round` (the member's pending vote first), then
    ///      `round` itself with this vote's outcome. Finalized rounds after `round` stay unsettled: the member may
    ///      still cast late votes for them. Tally, finalization, model and round sequence are not touched.
    function _lateVote(
        MemberState memory m,
        State memory s,
        uint256 round,
        bytes32 digest,
        bytes32 aggregateHash,
        string calldata aggregateCid,
        bytes32 rewardsRoot,
        string calldata rewardsCid,
        address[] calldata excluded
    ) private {
        if (round == 0 || round > s.currentRound) revert RoundNotOpen(round);
        RoundRecord memory rec = _loadRecord(round);
        // a failed round is always past its vote deadline (closeFailedRound requires it)
        if (rec.status != STATUS_FINALIZED || block.timestamp >= uint256(rec.start) + rec.commitPeriod + rec.votePeriod) {
            revert VotingClosed(round);
        }
        if (m.lastVoteRound == round) {
            if (m.flags & FLAG_NEW != 0) revert VotingClosed(round); // admitted while `round` was open
            revert AlreadyVoted(round, msg.sender);
        }
        // a member admitted after `round` (its lastVoteRound is its admission round) is refused as AlreadySettled
        if (m.lastVoteRound > round && m.flags & FLAG_NEW == 0) revert VoteOutOfOrder(round, m.lastVoteRound);
        // finSeen > finIndex: the member's reputation already covers `round` (admitted after it finalized, or a
        // commit two rounds later settled it as missed)
        if (m.finSeen > rec.finIndex) revert AlreadySettled(round, msg.sender);

        (bool selfExcluded, bytes32 excludedHash) = _checkExcluded(excluded);
        bytes32 expected = keccak256(abi.encodePacked(aggregateHash, rewardsRoot, excludedHash));
        if (expected != digest) revert DigestMismatch(expected, digest);

        // settle before overwriting the pending vote: rounds finalized before `round`, pending vote first
        uint64 totalBefore = s.totalWeight;
        _settle(m, s, rec.finIndex, msg.sender);
        bool rewarded = rec.digestPrefix == bytes10(digest) && !selfExcluded;
        uint64 w = ReputationMath.step(m.weight, rewarded, alphaBps);
        if (w != m.weight) {
            emit WeightUpdated(msg.sender, m.weight, w, round, rewarded, 0);
            s.totalWeight = s.totalWeight - m.weight + w;
            m.weight = w;
        }
        m.finSeen = rec.finIndex + 1;
        m.lastVoteRound = uint32(round);
        m.voteDigestPrefix = bytes10(digest);
        m.flags = FLAG_MEMBER; // any pending vote is settled above (an unsettled one was for a failed round)
        _storeMember(msg.sender, m);
        if (s.totalWeight != totalBefore) _storeState(s); // the only field a late vote changes
        emit Voted(round, msg.sender, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded, 0, true);
    }

    /// @dev Settlement in `commit(round)`: everything due, except that the previous round stays unsettled while
    ///      the member has not voted in it and its vote deadline has not passed (a late vote may still come).
    ///      Vote deadlines grow with the round number, so no earlier round can still take a late vote then
    ///      unless it is a round the member already voted after.
    function _settleForCommit(MemberState memory m, State memory s, uint256 round) private {
        if (m.finSeen == s.finalizedCount) return;
        uint32 upTo = s.finalizedCount;
        uint256 prev = round - 1;
        if (prev > m.lastVoteRound) {
            RoundRecord memory rec = _loadRecord(prev);
            uint256 voteDeadline = uint256(rec.start) + rec.commitPeriod + rec.votePeriod;
            if (rec.status == STATUS_FINALIZED && block.timestamp < voteDeadline) {
                upTo = rec.finIndex; // = finalizedCount - 1 >= finSeen
            }
        }
        _settle(m, s, upTo, msg.sender);
    }

    /// @dev Apply the reputation updates of the first `upTo` finalized rounds not yet settled (in memory; caller
    ///      stores).
    function _settle(MemberState memory m, State memory s, uint32 upTo, address account) private {
        if (m.finSeen >= upTo) return;
        (uint64 w, uint256 voteRound, bool rewarded, uint256 missed) = _reputation(m, upTo);
        // A finalized round settled here implies the pending vote's round is closed (it came before it).
        m.flags &= ~(FLAG_VOTE_PENDING | FLAG_SELF_EXCLUDED | FLAG_NEW);
        m.finSeen = upTo;
        if (w != m.weight) {
            emit WeightUpdated(account, m.weight, w, voteRound, rewarded, missed);
            s.totalWeight = s.totalWeight - m.weight + w;
            m.weight = w;
        }
    }

    /// @dev Rounds finalized since `m.finSeen`: the member's pending vote round comes first (all earlier rounds
    ///      were settled when it voted); outcome 1 iff its digest is the finalized one and it did not exclude
    ///      itself. Every other finalized round is outcome 0, applied in closed form w * (1 - alpha)^k.
    function _reputation(MemberState memory m, uint32 finalizedCount)
        private
        view
        returns (uint64 w, uint256 voteRound, bool rewarded, uint256 missed)
    {
        w = m.weight;
        missed = finalizedCount - m.finSeen;
        if (missed == 0) return (w, 0, false, 0);
        if (m.flags & FLAG_VOTE_PENDING != 0) {
            RoundRecord memory rec = _loadRecord(m.lastVoteRound);
            if (rec.status == STATUS_FINALIZED) {
                voteRound = m.lastVoteRound;
                missed -= 1;
                rewarded = rec.digestPrefix == m.voteDigestPrefix && m.flags & FLAG_SELF_EXCLUDED == 0;
                w = ReputationMath.step(w, rewarded, alphaBps);
            }
        } else if (m.flags & FLAG_NEW != 0 && _loadRecord(m.lastVoteRound).status == STATUS_FINALIZED) {
            missed -= 1; // the round it was admitted in: it could take no part in it
        }
        if (missed > 0 && w > 0) {
            w = ReputationMath.decay(w, alphaBps, missed);
        }
    }

    /// @dev Checks `excluded` is a strictly ascending list of clean addresses, whether it holds the caller, and
    ///      returns keccak256(abi.encodePacked(excluded)) - which for address[] equals the hash of the padded
    ///      calldata words. One assembly pass: the excluded list is the only per-vote cost that grows with n.
    function _checkExcluded(address[] calldata excluded) private view returns (bool selfExcluded, bytes32 hash) {
        uint256 bad;
        assembly ("memory-safe") {
            let prev := 0
            let len := shl(5, excluded.length)
            for { let i := 0 } lt(i, len) { i := add(i, 32) } {
                let a := calldataload(add(excluded.offset, i))
                // dirty high bits, address zero, or not above the previous entry
                if or(shr(160, a), iszero(gt(a, prev))) {
                    bad := add(shr(5, i), 1)
                    break
                }
                if eq(a, caller()) { selfExcluded := 1 }
                prev := a
            }
            let ptr := mload(0x40)
            calldatacopy(ptr, excluded.offset, len)
            hash := keccak256(ptr, len)
        }
        if (bad != 0) revert ExcludedNotSorted(bad - 1);
    }
}
