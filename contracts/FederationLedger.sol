// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

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
contract FederationLedger {
    // ------------------------------------------------------------------ types

    /// @notice Federation parameters fixed at deployment.
    struct Params {
        string rule; // aggregation rule, e.g. "multi_krum"
        uint16 ruleParam; // rule parameter (e.g. m for Multi-Krum); 0 = rule default
        uint16 f; // tolerated Byzantine members
        uint16 quorumBps; // finalize when tally * 10000 > quorumBps * totalWeight
        uint32 commitPeriod; // seconds from round start
        uint32 votePeriod; // seconds after the commit deadline
        uint256 rewardPerRound; // wei
        bytes32 modelSpecHash;
        bytes32 genesisModelHash;
        string genesisModelCid;
        uint8 scaleBits; // codec fixed-point scale
        uint16 alphaBps; // reputation step alpha, in basis points
        uint32 sampleCap; // aggregators use min(numSamples, sampleCap); 0 = no cap (applied off chain)
    }

    struct MemberInit {
        address account;
        bytes32 encKey; // X25519 public key
        uint64 weight; // initial voting weight, WEIGHT_ONE = 1.0
    }

    struct AuditorInit {
        address account;
        bytes32 encKey;
    }

    /// @dev One slot per member (248 bits).
    struct MemberState {
        uint64 weight;
        uint32 lastCommitRound;
        uint32 lastVoteRound;
        uint32 finSeen; // value of state.finalizedCount when reputation was last settled
        uint8 flags; // FLAG_MEMBER | FLAG_VOTE_PENDING | FLAG_SELF_EXCLUDED
        bytes10 voteDigestPrefix; // first 10 bytes of the digest voted in lastVoteRound
    }

    /// @dev The open round and membership totals, one slot (232 bits).
    struct State {
        uint32 currentRound;
        uint40 roundStart;
        uint32 commitCount;
        uint32 memberCount;
        uint64 totalWeight;
        uint32 finalizedCount;
    }

    /// @dev Written once when a round closes (finalized or failed), one slot (192 bits).
    struct RoundRecord {
        uint8 status;
        bytes10 digestPrefix; // first 10 bytes of the finalized digest
        uint40 start;
        uint32 commitCount;
        uint32 finIndex; // rounds finalized before this one (state.finalizedCount before it); finalized rounds only
    }

    /// @dev What `claim` needs of a finalized round, in one slot so a claim reads one cold slot per round:
    ///      the rewards root's high 160 bits (forging a proof for them takes ~2^160 hashes, as for an address)
    ///      and the unclaimed rest of the round's pool. The full root is in the RoundFinalized event.
    struct Payout {
        bytes20 rootHigh;
        uint96 unclaimed;
    }

    /// @notice Round status as reported by `roundInfo`.
    uint8 public constant STATUS_NONE = 0; // not opened yet
    uint8 public constant STATUS_OPEN = 1;
    uint8 public constant STATUS_FINALIZED = 2;
    uint8 public constant STATUS_FAILED = 3;

    /// @notice Round phase as reported by `phase`.
    uint8 public constant PHASE_NONE = 0; // future round
    uint8 public constant PHASE_COMMIT = 1;
    uint8 public constant PHASE_VOTE = 2;
    uint8 public constant PHASE_EXPIRED = 3; // vote deadline passed without finalization: closeFailedRound
    uint8 public constant PHASE_FINALIZED = 4;
    uint8 public constant PHASE_FAILED = 5;

    /// @notice Fixed-point unit of voting weight (1.0); reputation converges to it for always-agreeing members.
    uint64 public constant WEIGHT_ONE = 1_000_000;

    uint8 private constant FLAG_MEMBER = 1;
    uint8 private constant FLAG_VOTE_PENDING = 2;
    uint8 private constant FLAG_SELF_EXCLUDED = 4;
    uint256 private constant BPS = 10_000;
    uint256 private constant WAD = 1e18;

    // ------------------------------------------------------------------ errors

    error NotMember(address account);
    error AlreadyMember(address account);
    error AlreadyAuditor(address account);
    error Unauthorized(address caller);
    error InvalidParameter(string name);
    error RoundNotOpen(uint256 round);
    error CommitClosed(uint256 round);
    error AlreadyCommitted(uint256 round, address member);
    error VotingNotOpen(uint256 round);
    error VotingClosed(uint256 round);
    error AlreadyVoted(uint256 round, address member);
    /// @notice A late vote for `round` after the member already voted in the later round `lastVoteRound`.
    error VoteOutOfOrder(uint256 round, uint256 lastVoteRound);
    /// @notice A late vote for `round` from a member whose reputation is already settled past it: it was admitted
    ///         after the round finalized, or it committed two rounds later without voting `round`.
    error AlreadySettled(uint256 round, address member);
    error ExcludedNotSorted(uint256 index);
    error DigestMismatch(bytes32 expected, bytes32 given);
    error VoteDeadlineNotReached(uint256 round, uint256 voteDeadline);
    error LengthMismatch();
    error NotFinalized(uint256 round);
    error AlreadyClaimed(uint256 round, address account);
    error InvalidProof(uint256 round);
    error PoolExceeded(uint256 round, uint256 amount, uint256 unclaimed);
    error TransferFailed(address to, uint256 amount);
    error ReentrantCall();

    // ------------------------------------------------------------------ events

    event MemberAdmitted(address indexed member, bytes32 encKey, uint64 weight, uint256 totalWeight);
    event AuditorRegistered(address indexed auditor, bytes32 encKey);
    event Funded(address indexed from, uint256 amount, uint256 balance);
    event RoundOpened(uint256 indexed round, uint64 start, uint64 commitDeadline, uint64 voteDeadline);
    event Committed(
        uint256 indexed round,
        address indexed member,
        bytes32 updateHash,
        string cid,
        uint32 numSamples,
        uint64 epsilonE6,
        uint64 deltaE18
    );
    /// @notice A vote. `weight` is what it added to the round's tally; a late vote (cast after the round was
    ///         finalized, before its vote deadline) has `late = true` and `weight = 0`: it only moves the voter's
    ///         reputation.
    event Voted(
        uint256 indexed round,
        address indexed member,
        bytes32 indexed digest,
        bytes32 aggregateHash,
        string aggregateCid,
        bytes32 rewardsRoot,
        string rewardsCid,
        address[] excluded,
        uint64 weight,
        bool late
    );
    event RoundFinalized(
        uint256 indexed round,
        bytes32 indexed digest,
        bytes32 aggregateHash,
        string aggregateCid,
        bytes32 rewardsRoot,
        string rewardsCid,
        address[] excluded,
        uint256 weightFor,
        uint256 totalWeight,
        uint256 pool
    );
    event RoundFailed(uint256 indexed round, address closedBy);
    /// @notice Lazy reputation update: `voteRound` (0 = none) was finalized with outcome `rewarded`, then
    ///         `missedRounds` further finalized rounds counted as outcome 0.
    event WeightUpdated(
        address indexed member, uint64 oldWeight, uint64 newWeight, uint256 voteRound, bool rewarded, uint256 missedRounds
    );
    event Claimed(address indexed account, uint256[] rounds, uint256[] amounts, uint256 total);

    // ------------------------------------------------------------------ storage

    address public immutable owner;
    uint16 public immutable ruleParam;
    uint16 public immutable f;
    uint16 public immutable quorumBps;
    uint32 public immutable commitPeriod;
    uint32 public immutable votePeriod;
    uint256 public immutable rewardPerRound;
    bytes32 public immutable modelSpecHash;
    bytes32 public immutable genesisModelHash;
    uint8 public immutable scaleBits;
    uint16 public immutable alphaBps;
    uint32 public immutable sampleCap;
    string public rule;
    string public genesisModelCid;

    State internal state;
    /// @notice Wei reserved for unclaimed rewards of finalized rounds.
    uint128 public reserved;
    /// @notice Round whose aggregate is the current global model (0 = genesis).
    uint32 public modelRound;
    /// @notice sha256 of the current global model's canonical bytes.
    bytes32 public modelHash;

    mapping(address => MemberState) internal memberState;
    mapping(address => bytes32) public memberKey;
    address[] internal memberList;
    mapping(address => bytes32) public auditorKey;
    address[] internal auditorList;

    mapping(uint256 => RoundRecord) internal roundRecord;
    mapping(uint256 => Payout) internal payout;
    /// @notice Vote weight per (round, digest).
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
    /// @param params federation parameters
    /// @param members_ initial members (address, X25519 key, initial weight)
    /// @param auditors_ initial auditors (address, X25519 key)
    constructor(Params memory params, MemberInit[] memory members_, AuditorInit[] memory auditors_) payable {
        if (members_.length == 0) revert InvalidParameter("members");
        if (params.quorumBps < 5000 || params.quorumBps >= BPS) revert InvalidParameter("quorumBps");
        if (params.alphaBps > BPS) revert InvalidParameter("alphaBps");
        if (params.commitPeriod == 0) revert InvalidParameter("commitPeriod");
        if (params.votePeriod == 0) revert InvalidParameter("votePeriod");
        if (params.rewardPerRound > type(uint96).max) revert InvalidParameter("rewardPerRound");
        owner = msg.sender;
        rule = params.rule;
        ruleParam = params.ruleParam;
        f = params.f;
        quorumBps = params.quorumBps;
        commitPeriod = params.commitPeriod;
        votePeriod = params.votePeriod;
        rewardPerRound = params.rewardPerRound;
        modelSpecHash = params.modelSpecHash;
        genesisModelHash = params.genesisModelHash;
        genesisModelCid = params.genesisModelCid;
        scaleBits = params.scaleBits;
        alphaBps = params.alphaBps;
        sampleCap = params.sampleCap;
        modelHash = params.genesisModelHash;

        State memory s;
        for (uint256 i = 0; i < members_.length; ++i) {
            _admit(s, members_[i].account, members_[i].encKey, members_[i].weight);
        }
        for (uint256 i = 0; i < auditors_.length; ++i) {
            _register(auditors_[i].account, auditors_[i].encKey);
        }
        s.currentRound = 1;
        s.roundStart = uint40(block.timestamp);
        state = s;
        if (msg.value > 0) emit Funded(msg.sender, msg.value, address(this).balance);
        _emitOpened(1, block.timestamp);
    }

    // ------------------------------------------------------------------ admin

    /// @notice Admit a new member (owner only). It takes part from the current round on.
    /// @param account member address (signs commits and votes)
    /// @param encKey X25519 public key update blobs are sealed to
    /// @param weight initial voting weight (WEIGHT_ONE = 1.0)
    function admitMember(address account, bytes32 encKey, uint64 weight) external onlyOwner {
        State memory s = state;
        _admit(s, account, encKey, weight);
        state = s;
    }

    /// @notice Register an auditor who can unseal every update blob (owner only).
    /// @param account auditor address
    /// @param encKey X25519 public key
    function registerAuditor(address account, bytes32 encKey) external onlyOwner {
        _register(account, encKey);
    }

    /// @notice Add ETH to the reward pool (anyone).
    function fund() external payable {
        emit Funded(msg.sender, msg.value, address(this).balance);
    }

    /// @notice Plain ETH transfers fund the reward pool too.
    receive() external payable {
        emit Funded(msg.sender, msg.value, address(this).balance);
    }

    // ------------------------------------------------------------------ protocol

    /// @notice Commit this member's model update for `round` before the commit deadline.
    /// @param round the open round
    /// @param updateHash sha256 of the canonical update bytes
    /// @param cid IPFS CID of the sealed update blob
    /// @param numSamples local training samples (aggregators cap it at sampleCap)
    /// @param epsilonE6 DP epsilon spent * 1e6 (type(uint64).max = no DP)
    /// @param deltaE18 DP delta * 1e18
    function commit(
        uint256 round,
        bytes32 updateHash,
        string calldata cid,
        uint32 numSamples,
        uint64 epsilonE6,
        uint64 deltaE18
    ) external {
        MemberState memory m = memberState[msg.sender];
        if (m.flags & FLAG_MEMBER == 0) revert NotMember(msg.sender);
        State memory s = state;
        if (round != s.currentRound) revert RoundNotOpen(round);
        if (m.lastCommitRound == round) revert AlreadyCommitted(round, msg.sender);
        if (block.timestamp >= uint256(s.roundStart) + commitPeriod || s.commitCount >= s.memberCount) {
            revert CommitClosed(round);
        }
        _settleForCommit(m, s, round);
        m.lastCommitRound = uint32(round);
        s.commitCount += 1;
        memberState[msg.sender] = m;
        state = s;
        emit Committed(round, msg.sender, updateHash, cid, numSamples, epsilonE6, deltaE18);
    }

    /// @notice Vote for the round's outcome after the commit phase; the vote that lifts one digest's weight
    ///         above quorumBps/10000 of the total weight finalizes the round and opens the next one.
    ///         A vote for a round that is already finalized is a *late vote*, accepted until the round's original
    ///         vote deadline: checked like an on-time vote, recorded with `late = true`, never counted in the
    ///         tally; it settles the voter's reputation for that round like an on-time vote would.
    /// @param round the open round, or (late vote) a finalized round whose vote deadline has not passed
    /// @param digest keccak256(abi.encodePacked(aggregateHash, rewardsRoot, keccak256(abi.encodePacked(excluded))))
    /// @param aggregateHash sha256 of the new global model's canonical bytes
    /// @param aggregateCid IPFS CID of the new global model
    /// @param rewardsRoot Merkle root of the round's reward leaves (0 for no rewards)
    /// @param rewardsCid IPFS CID of the reward tree's leaves
    /// @param excluded excluded member addresses, strictly ascending
    function vote(
        uint256 round,
        bytes32 digest,
        bytes32 aggregateHash,
        string calldata aggregateCid,
        bytes32 rewardsRoot,
        string calldata rewardsCid,
        address[] calldata excluded
    ) external {
        MemberState memory m = memberState[msg.sender];
        if (m.flags & FLAG_MEMBER == 0) revert NotMember(msg.sender);
        State memory s = state;
        if (round != s.currentRound) {
            _lateVote(m, s, round, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded);
            return;
        }
        uint256 commitDeadline = uint256(s.roundStart) + commitPeriod;
        if (block.timestamp < commitDeadline && s.commitCount < s.memberCount) revert VotingNotOpen(round);
        if (block.timestamp >= commitDeadline + votePeriod) revert VotingClosed(round);
        if (m.lastVoteRound == round) revert AlreadyVoted(round, msg.sender);

        (bool selfExcluded, bytes32 excludedHash) = _checkExcluded(excluded);
        bytes32 expected = keccak256(abi.encodePacked(aggregateHash, rewardsRoot, excludedHash));
        if (expected != digest) revert DigestMismatch(expected, digest);

        _settle(m, s, s.finalizedCount, msg.sender);
        m.lastVoteRound = uint32(round);
        m.voteDigestPrefix = bytes10(digest);
        m.flags = (m.flags & FLAG_MEMBER) | FLAG_VOTE_PENDING | (selfExcluded ? FLAG_SELF_EXCLUDED : 0);
        memberState[msg.sender] = m;

        uint256 weightFor = tally[round][digest] + m.weight;
        tally[round][digest] = weightFor;
        emit Voted(
            round, msg.sender, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded, m.weight, false
        );

        if (weightFor * BPS > uint256(quorumBps) * s.totalWeight) {
            uint256 available = address(this).balance - reserved;
            uint256 pool = rewardPerRound < available ? rewardPerRound : available;
            reserved += uint128(pool);
            modelRound = uint32(round);
            modelHash = aggregateHash;
            payout[round] = Payout({rootHigh: bytes20(rewardsRoot), unclaimed: uint96(pool)});
            roundRecord[round] = RoundRecord({
                status: STATUS_FINALIZED,
                digestPrefix: bytes10(digest),
                start: s.roundStart,
                commitCount: s.commitCount,
                finIndex: s.finalizedCount
            });
            emit RoundFinalized(
                round, digest, aggregateHash, aggregateCid, rewardsRoot, rewardsCid, excluded, weightFor, s.totalWeight, pool
            );
            s.finalizedCount += 1;
            _openNext(s, round);
        }
        state = s;
    }

    /// @notice Close the open round as failed once its vote deadline passed without finalization (anyone).
    ///         The global model stays; the next round opens.
    /// @param round the open round
    function closeFailedRound(uint256 round) external {
        State memory s = state;
        if (round != s.currentRound) revert RoundNotOpen(round);
        uint256 voteDeadline = uint256(s.roundStart) + commitPeriod + votePeriod;
        if (block.timestamp < voteDeadline) revert VoteDeadlineNotReached(round, voteDeadline);
        roundRecord[round] = RoundRecord({
            status: STATUS_FAILED,
            digestPrefix: bytes10(0),
            start: s.roundStart,
            commitCount: s.commitCount,
            finIndex: 0
        });
        emit RoundFailed(round, msg.sender);
        _openNext(s, round);
        state = s;
    }

    /// @notice Claim rewards of any number of finalized rounds; pays msg.sender.
    /// @param rounds finalized rounds, each at most once per account
    /// @param amounts wei per round, as in the round's reward tree
    /// @param proofs sorted-pair Merkle proof per round for leaf keccak256(keccak256(abi.encode(round, msg.sender, amount)))
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
            // only finalization writes a payout (a finalized round with an empty tree and no pool pays nothing)
            if (p.rootHigh == bytes20(0) && p.unclaimed == 0) revert NotFinalized(r);
            uint256 bit = 1 << (r & 255);
            uint256 word = claimedBits[msg.sender][r >> 8];
            if (word & bit != 0) revert AlreadyClaimed(r, msg.sender);
            bytes32 leaf = keccak256(bytes.concat(keccak256(abi.encode(r, msg.sender, amount))));
            if (bytes20(_processProof(proofs[i], leaf)) != p.rootHigh) revert InvalidProof(r);
            if (amount > p.unclaimed) revert PoolExceeded(r, amount, p.unclaimed);
            claimedBits[msg.sender][r >> 8] = word | bit;
            payout[r] = Payout({rootHigh: p.rootHigh, unclaimed: p.unclaimed - uint96(amount)});
            total += amount;
        }
        reserved -= uint128(total);
        emit Claimed(msg.sender, rounds, amounts, total);
        (bool ok,) = msg.sender.call{value: total}("");
        if (!ok) revert TransferFailed(msg.sender, total);
    }

    // ------------------------------------------------------------------ views

    /// @notice Federation parameters.
    function parameters() external view returns (Params memory p) {
        p = Params({
            rule: rule,
            ruleParam: ruleParam,
            f: f,
            quorumBps: quorumBps,
            commitPeriod: commitPeriod,
            votePeriod: votePeriod,
            rewardPerRound: rewardPerRound,
            modelSpecHash: modelSpecHash,
            genesisModelHash: genesisModelHash,
            genesisModelCid: genesisModelCid,
            scaleBits: scaleBits,
            alphaBps: alphaBps,
            sampleCap: sampleCap
        });
    }

    /// @notice The open round.
    function currentRound() external view returns (uint256) {
        return state.currentRound;
    }

    /// @notice Membership totals: (memberCount, totalWeight, finalizedCount).
    function totals() external view returns (uint256 memberCount, uint256 totalWeight, uint256 finalizedCount) {
        State memory s = state;
        return (s.memberCount, s.totalWeight, s.finalizedCount);
    }

    /// @notice Status, timing and payout state of round `r` (all zero for rounds not opened yet); `rootHigh` is
    ///         the high 160 bits of a finalized round's rewards root (the full root is in RoundFinalized).
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
            bytes10 digestPrefix
        )
    {
        State memory s = state;
        if (r == s.currentRound) {
            status = STATUS_OPEN;
            start = s.roundStart;
            commitCount = s.commitCount;
        } else if (r == 0 || r > s.currentRound) {
            return (STATUS_NONE, 0, 0, 0, 0, 0, bytes20(0), bytes10(0));
        } else {
            RoundRecord memory rec = roundRecord[r];
            Payout memory p = payout[r];
            (status, start, commitCount, digestPrefix) = (rec.status, rec.start, rec.commitCount, rec.digestPrefix);
            (unclaimed, rootHigh) = (p.unclaimed, p.rootHigh);
        }
        commitDeadline = start + commitPeriod;
        voteDeadline = commitDeadline + votePeriod;
    }

    /// @notice Phase of round `r` now: PHASE_NONE, _COMMIT, _VOTE, _EXPIRED, _FINALIZED or _FAILED.
    function phase(uint256 r) external view returns (uint8) {
        State memory s = state;
        if (r == 0 || r > s.currentRound) return PHASE_NONE;
        if (r < s.currentRound) return roundRecord[r].status == STATUS_FINALIZED ? PHASE_FINALIZED : PHASE_FAILED;
        uint256 commitDeadline = uint256(s.roundStart) + commitPeriod;
        if (block.timestamp < commitDeadline && s.commitCount < s.memberCount) return PHASE_COMMIT;
        if (block.timestamp < commitDeadline + votePeriod) return PHASE_VOTE;
        return PHASE_EXPIRED;
    }

    /// @notice All member addresses in admission order.
    function members() external view returns (address[] memory) {
        return memberList;
    }

    /// @notice All auditor addresses in registration order.
    function auditors() external view returns (address[] memory) {
        return auditorList;
    }

    /// @notice Stored state of `account`; `weight` is the stored (settled) weight, see `effectiveWeight`.
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
        MemberState memory m = memberState[account];
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

    /// @notice Weight `account` will have once its pending reputation updates are applied, counting every
    ///         finalized round it has not voted in as outcome 0 (a late vote, still possible until that round's
    ///         vote deadline, would replace that outcome).
    function effectiveWeight(address account) external view returns (uint64) {
        MemberState memory m = memberState[account];
        (uint64 w,,,) = _reputation(m, state.finalizedCount);
        return w;
    }

    /// @notice The current global model: sha256 of its canonical bytes and the round that produced it (0 = genesis).
    function model() external view returns (bytes32 hash, uint256 round) {
        return (modelHash, modelRound);
    }

    /// @notice Whether `account` already claimed its reward of `round`.
    function isClaimed(address account, uint256 round) external view returns (bool) {
        return claimedBits[account][round >> 8] & (1 << (round & 255)) != 0;
    }

    // ------------------------------------------------------------------ internals

    function _admit(State memory s, address account, bytes32 encKey, uint64 weight) private {
        if (account == address(0)) revert InvalidParameter("account");
        if (memberState[account].flags & FLAG_MEMBER != 0) revert AlreadyMember(account);
        // A member nobody can seal to would make every honest peer's seal fail: refuse it at admission.
        if (encKey == bytes32(0)) revert InvalidParameter("encKey");
        memberState[account] = MemberState({
            weight: weight,
            lastCommitRound: 0,
            lastVoteRound: 0,
            finSeen: s.finalizedCount,
            flags: FLAG_MEMBER,
            voteDigestPrefix: bytes10(0)
        });
        memberKey[account] = encKey;
        memberList.push(account);
        s.memberCount += 1;
        s.totalWeight += weight;
        emit MemberAdmitted(account, encKey, weight, s.totalWeight);
    }

    function _register(address account, bytes32 encKey) private {
        if (account == address(0)) revert InvalidParameter("account");
        if (auditorKey[account] != bytes32(0)) revert AlreadyAuditor(account);
        if (encKey == bytes32(0)) revert InvalidParameter("encKey");
        auditorKey[account] = encKey;
        auditorList.push(account);
        emit AuditorRegistered(account, encKey);
    }

    function _openNext(State memory s, uint256 round) private {
        s.currentRound = uint32(round + 1);
        s.roundStart = uint40(block.timestamp);
        s.commitCount = 0;
        _emitOpened(round + 1, block.timestamp);
    }

    function _emitOpened(uint256 round, uint256 start) private {
        uint256 commitDeadline = start + commitPeriod;
        emit RoundOpened(round, uint64(start), uint64(commitDeadline), uint64(commitDeadline + votePeriod));
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
        RoundRecord memory rec = roundRecord[round];
        // a failed round is always past its vote deadline (closeFailedRound requires it)
        if (rec.status != STATUS_FINALIZED || block.timestamp >= uint256(rec.start) + commitPeriod + votePeriod) {
            revert VotingClosed(round);
        }
        if (m.lastVoteRound == round) revert AlreadyVoted(round, msg.sender);
        if (m.lastVoteRound > round) revert VoteOutOfOrder(round, m.lastVoteRound);
        // finSeen > finIndex: the member's reputation already covers `round` (admitted after it finalized, or a
        // commit two rounds later settled it as missed)
        if (m.finSeen > rec.finIndex) revert AlreadySettled(round, msg.sender);

        (bool selfExcluded, bytes32 excludedHash) = _checkExcluded(excluded);
        bytes32 expected = keccak256(abi.encodePacked(aggregateHash, rewardsRoot, excludedHash));
        if (expected != digest) revert DigestMismatch(expected, digest);

        // settle before overwriting the pending vote: rounds finalized before `round`, pending vote first
        _settle(m, s, rec.finIndex, msg.sender);
        bool rewarded = rec.digestPrefix == bytes10(digest) && !selfExcluded;
        uint64 w = _step(m.weight, rewarded);
        if (w != m.weight) {
            emit WeightUpdated(msg.sender, m.weight, w, round, rewarded, 0);
            s.totalWeight = s.totalWeight - m.weight + w;
            m.weight = w;
        }
        m.finSeen = rec.finIndex + 1;
        m.lastVoteRound = uint32(round);
        m.voteDigestPrefix = bytes10(digest);
        m.flags = FLAG_MEMBER; // any pending vote is settled above (an unsettled one was for a failed round)
        memberState[msg.sender] = m;
        state = s;
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
            RoundRecord memory rec = roundRecord[prev];
            if (rec.status == STATUS_FINALIZED && block.timestamp < uint256(rec.start) + commitPeriod + votePeriod) {
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
        m.flags &= ~(FLAG_VOTE_PENDING | FLAG_SELF_EXCLUDED);
        m.finSeen = upTo;
        if (w != m.weight) {
            emit WeightUpdated(account, m.weight, w, voteRound, rewarded, missed);
            s.totalWeight = s.totalWeight - m.weight + w;
            m.weight = w;
        }
    }

    /// @dev One finalized round's update w <- w + alpha * (outcome - w), rounding toward the old weight.
    function _step(uint64 w, bool rewarded) private view returns (uint64) {
        if (!rewarded) return uint64((uint256(w) * (BPS - alphaBps)) / BPS);
        if (w <= WEIGHT_ONE) return w + uint64((uint256(WEIGHT_ONE - w) * alphaBps) / BPS);
        return w - uint64((uint256(w - WEIGHT_ONE) * alphaBps) / BPS);
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
            RoundRecord memory rec = roundRecord[m.lastVoteRound];
            if (rec.status == STATUS_FINALIZED) {
                voteRound = m.lastVoteRound;
                missed -= 1;
                rewarded = rec.digestPrefix == m.voteDigestPrefix && m.flags & FLAG_SELF_EXCLUDED == 0;
                w = _step(w, rewarded);
            }
        }
        if (missed > 0 && w > 0) {
            w = uint64((uint256(w) * _rpow((BPS - alphaBps) * 1e14, missed)) / WAD);
        }
    }

    /// @dev x^n for WAD fixed point x, rounding down at every step (exponentiation by squaring).
    function _rpow(uint256 x, uint256 n) private pure returns (uint256 z) {
        z = WAD;
        while (n > 0) {
            if (n & 1 != 0) z = (z * x) / WAD;
            n >>= 1;
            if (n > 0) x = (x * x) / WAD;
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

    /// @dev OpenZeppelin MerkleProof.processProof: sorted-pair keccak256.
    function _processProof(bytes32[] calldata proof, bytes32 leaf) private pure returns (bytes32 computed) {
        computed = leaf;
        for (uint256 i = 0; i < proof.length; ++i) {
            bytes32 p = proof[i];
            computed = computed < p ? _hashPair(computed, p) : _hashPair(p, computed);
        }
    }

    function _hashPair(bytes32 a, bytes32 b) private pure returns (bytes32 value) {
        assembly ("memory-safe") {
            mstore(0x00, a)
            mstore(0x20, b)
            value := keccak256(0x00, 0x40)
        }
    }
}
