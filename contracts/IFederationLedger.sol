// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

/// @title IFederationLedger
/// @notice The external surface of a federation's ledger: the parameter and admission structs, the custom errors,
///         the events an auditor rebuilds every round from, and the functions members, auditors and the owner
///         call. `FederationLedger` implements it; its storage layout (packed member, round and payout slots)
///         is an implementation detail and stays there.
/// @dev Round status is reported as uint8 (`STATUS_*` of the implementation), not as an enum, so the ABI and
///      the packed storage stay as they are. A round's phase follows from `roundInfo` and the block time
///      (ledger_tools.chain.binding.FederationLedger.phase), so the contract keeps no view for it.
interface IFederationLedger {
    // ------------------------------------------------------------------ structs

    /// @notice Federation parameters. rule, ruleParam, f, quorumBps, commitPeriod, votePeriod and rewardPerRound
    ///         are round parameters the owner may change (`setRoundParams`) from the next round on; the rest is
    ///         fixed at deployment.
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
        uint32 sampleCap; // aggregators use min(numSamples, sampleCap); 0 = DEFAULT_SAMPLE_CAP (applied off chain)
    }

    /// @notice The round parameters `setRoundParams` sets (each as in `Params`).
    struct RoundParamsUpdate {
        string rule;
        uint16 ruleParam;
        uint16 f;
        uint16 quorumBps;
        uint32 commitPeriod;
        uint32 votePeriod;
        uint256 rewardPerRound;
    }

    /// @notice A member admitted at deployment.
    struct MemberInit {
        address account; // signs commits and votes
        bytes32 encKey; // X25519 public key update blobs are sealed to
        uint64 weight; // initial voting weight, WEIGHT_ONE = 1.0, at most MAX_MEMBER_WEIGHT
    }

    /// @notice An auditor registered at deployment; it can unseal every update blob.
    struct AuditorInit {
        address account;
        bytes32 encKey; // X25519 public key
    }

    // ------------------------------------------------------------------ errors

    /// @notice `account` is not a member (commit, vote).
    error NotMember(address account);
    /// @notice `account` is a member already (admission).
    error AlreadyMember(address account);
    /// @notice `account` is an auditor already (registration).
    error AlreadyAuditor(address account);
    /// @notice `caller` is not the owner.
    error Unauthorized(address caller);
    /// @notice The parameter or argument `name` is out of range (deployment, admission): see the constructor and
    ///         `admitMember` for every bound.
    error InvalidParameter(string name);
    /// @notice `round` is not the open round (commit, close) or not a round a vote can address.
    error RoundNotOpen(uint256 round);
    /// @notice The commit phase of `round` is over (deadline passed or every member counting in the round
    ///         committed), or the caller was admitted while `round` was open (it takes part from the next round).
    error CommitClosed(uint256 round);
    /// @notice `caller` committed through a contract or a delegated account (EIP-7702): a commitment must be the
    ///         top-level call of a transaction the member's own key signed, because that signed transaction is
    ///         what proves on chain which update hash it committed (FederationGovernor.slashCommitMismatch).
    error NotDirectCall(address caller);
    /// @notice `member` already committed in `round`.
    error AlreadyCommitted(uint256 round, address member);
    /// @notice The commit phase of `round` is still running (before its deadline, not every member committed).
    error VotingNotOpen(uint256 round);
    /// @notice The vote deadline of `round` passed, (late vote) `round` was not finalized, or the caller was
    ///         admitted while `round` was open (it takes part from the next round).
    error VotingClosed(uint256 round);
    /// @notice `member` already voted in `round`.
    error AlreadyVoted(uint256 round, address member);
    /// @notice A late vote for `round` after the member already voted in the later round `lastVoteRound`.
    error VoteOutOfOrder(uint256 round, uint256 lastVoteRound);
    /// @notice A late vote for `round` from a member whose reputation is already settled past it: it was admitted
    ///         after the round finalized, or it committed two rounds later without voting `round`.
    error AlreadySettled(uint256 round, address member);
    /// @notice The excluded list is not strictly ascending clean addresses; `index` is the first bad entry.
    error ExcludedNotSorted(uint256 index);
    /// @notice The vote's digest is not keccak256(aggregateHash, rewardsRoot, keccak256(excluded)).
    error DigestMismatch(bytes32 expected, bytes32 given);
    /// @notice `round` cannot be closed as failed before `voteDeadline`.
    error VoteDeadlineNotReached(uint256 round, uint256 voteDeadline);
    /// @notice A claim's rounds, amounts and proofs differ in length, or are empty.
    error LengthMismatch();
    /// @notice A claim names a round that was not finalized, or was finalized with an empty reward tree (it pays
    ///         nothing and reserved nothing).
    error NotFinalized(uint256 round);
    /// @notice `account` already claimed its reward of `round`.
    error AlreadyClaimed(uint256 round, address account);
    /// @notice The claim's proof for `round` does not lead to the round's rewards root.
    error InvalidProof(uint256 round);
    /// @notice Claiming `amount` of `round` would exceed the round's `unclaimed` pool.
    error PoolExceeded(uint256 round, uint256 amount, uint256 unclaimed);
    /// @notice Paying `amount` to `to` failed.
    error TransferFailed(address to, uint256 amount);
    /// @notice A claim re-entered the ledger.
    error ReentrantCall();
    /// @notice An announced multiaddr of `length` bytes is empty or longer than 256 bytes.
    error InvalidMultiaddrLength(uint256 length);
    /// @notice `round` has no unclaimed reward to sweep (not finalized, empty tree, fully claimed or swept).
    error NothingToSweep(uint256 round);
    /// @notice The claim window of `round` is still open until `closesAt` (its vote deadline + CLAIM_WINDOW).
    error ClaimWindowOpen(uint256 round, uint256 closesAt);

    // ------------------------------------------------------------------ events

    /// @notice `member` joined with X25519 key `encKey` and voting weight `weight`; `totalWeight` after it.
    event MemberAdmitted(address indexed member, bytes32 encKey, uint64 weight, uint256 totalWeight);
    /// @notice `auditor` registered with X25519 key `encKey`.
    event AuditorRegistered(address indexed auditor, bytes32 encKey);
    /// @notice `from` added `amount` wei to the reward pool; the contract then holds `balance`.
    event Funded(address indexed from, uint256 amount, uint256 balance);
    /// @notice `round` opened at `start`; commits until `commitDeadline`, votes until `voteDeadline`. Its reward
    ///         `pool` is fixed now, min(rewardPerRound, balance - reserved): the round's reward tree splits exactly
    ///         this, whatever is funded or claimed while the round is open.
    event RoundOpened(uint256 indexed round, uint64 start, uint64 commitDeadline, uint64 voteDeadline, uint256 pool);
    /// @notice `member` committed the update with sha256 `updateHash`, sealed at IPFS `cid`, trained on
    ///         `numSamples` samples with DP budget (`epsilonE6` / 1e6, `deltaE18` / 1e18).
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
    /// @notice `round` finalized on `digest` with `weightFor` of `totalWeight`; the aggregate becomes the global
    ///         model. `pool` is the round's pool (fixed when it opened, the amount its reward tree splits); it is
    ///         reserved for the tree with root `rewardsRoot`, unless that root is 0 (empty tree: nothing reserved).
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
    /// @notice `round` passed its vote deadline without finalization and was closed by `closedBy`.
    event RoundFailed(uint256 indexed round, address closedBy);
    /// @notice Lazy reputation update: `voteRound` (0 = none) was finalized with outcome `rewarded`, then
    ///         `missedRounds` further finalized rounds counted as outcome 0.
    event WeightUpdated(
        address indexed member, uint64 oldWeight, uint64 newWeight, uint256 voteRound, bool rewarded, uint256 missedRounds
    );
    /// @notice `account` claimed `amounts` of `rounds`, `total` wei paid.
    event Claimed(address indexed account, uint256[] rounds, uint256[] amounts, uint256 total);
    /// @notice `amount` wei of `round`'s reward, unclaimed when its claim window closed, went back to the pool
    ///         (unreserved; later rounds' pools may use it); `sweptBy` called `sweep`.
    event Swept(uint256 indexed round, address indexed sweptBy, uint256 amount);
    /// @notice The owner set the round parameters that apply from `effectiveRound` (the next round to open) on;
    ///         the open round keeps its own. A later set before `effectiveRound` opens replaces this one.
    event RoundParamsChanged(
        uint256 indexed effectiveRound,
        string rule,
        uint16 ruleParam,
        uint16 f,
        uint16 quorumBps,
        uint32 commitPeriod,
        uint32 votePeriod,
        uint256 rewardPerRound
    );
    /// @notice `member` can be dialled for gossip at libp2p `multiaddr` (e.g. /ip4/10.0.0.2/tcp/4001/p2p/12D3...);
    ///         the latest announcement of a member replaces its earlier ones. Peers discover each other from
    ///         these events, so no single bootstrap peer is needed.
    event MemberAnnounced(address indexed member, string multiaddr);

    // ------------------------------------------------------------------ admin

    /// @notice Admit a new member (owner only). It takes part from the next round on: the open round keeps its
    ///         members, total weight and quorum (the newcomer's commit and vote there revert CommitClosed /
    ///         VotingClosed). At most 2^24 - 1 members (InvalidParameter("members")).
    /// @param account member address (signs commits and votes), not 0 (InvalidParameter("account"))
    /// @param encKey X25519 public key update blobs are sealed to, not 0 (InvalidParameter("encKey"))
    /// @param weight initial voting weight (WEIGHT_ONE = 1.0), at most MAX_MEMBER_WEIGHT (InvalidParameter("weight"))
    function admitMember(address account, bytes32 encKey, uint64 weight) external;

    /// @notice Register an auditor who can unseal every update blob (owner only).
    /// @param account auditor address
    /// @param encKey X25519 public key
    function registerAuditor(address account, bytes32 encKey) external;

    /// @notice Set the round parameters from the next round to open on (owner only: the governor, on a passed
    ///         proposal). Bounds as in the constructor, InvalidParameter(<name>): rule 1..64 bytes, f < member
    ///         count, 5000 <= quorumBps < 10000, periods > 0, rewardPerRound < 2^96. Whether the rule can
    ///         tolerate f with the members is checked by the governor (FederationGovernor.proposeRoundParams).
    function setRoundParams(RoundParamsUpdate calldata u) external;

    /// @notice Add ETH to the reward pool (anyone).
    function fund() external payable;

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
    ) external;

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
    ) external;

    /// @notice Close the open round as failed once its vote deadline passed without finalization (anyone).
    ///         The global model stays; the next round opens.
    /// @param round the open round
    function closeFailedRound(uint256 round) external;

    /// @notice Claim rewards of any number of finalized rounds; pays msg.sender. A round's rewards stay claimable
    ///         until someone sweeps it (possible from CLAIM_WINDOW after its vote deadline).
    /// @param rounds finalized rounds, each at most once per account
    /// @param amounts wei per round, as in the round's reward tree
    /// @param proofs sorted-pair Merkle proof per round for leaf keccak256(keccak256(abi.encode(round, msg.sender, amount)))
    function claim(uint256[] calldata rounds, uint256[] calldata amounts, bytes32[][] calldata proofs) external;

    /// @notice Return the unclaimed rest of finalized `round`'s reward to the pool (anyone), once its claim window
    ///         (CLAIM_WINDOW after the round's vote deadline) is over. Moves no ETH: it only unreserves.
    /// @param round a finalized round with an unclaimed reward
    function sweep(uint256 round) external;

    // ------------------------------------------------------------------ discovery

    /// @notice Publish (or replace) this member's gossip address for the other members to dial (members only).
    ///         Nothing is stored: the `MemberAnnounced` event is the record, read by peers from the logs.
    /// @param multiaddr libp2p multiaddr others can dial, 1 to 256 bytes (not checked further: a member can only
    ///        hurt its own reachability)
    function announce(string calldata multiaddr) external;

    // ------------------------------------------------------------------ views

    /// @notice Federation parameters that apply (or, for a round not opened yet, will apply as set now) to round `r`.
    function paramsForRound(uint256 r) external view returns (Params memory p);

    /// @notice The open round.
    function currentRound() external view returns (uint256);

    /// @notice Membership totals: (memberCount, totalWeight, finalizedCount) of every member, including those
    ///         admitted while the open round runs (they count in rounds from the next one; `roundInfo` has the
    ///         open round's member count).
    function totals() external view returns (uint256 memberCount, uint256 totalWeight, uint256 finalizedCount);

    /// @notice Status, timing and payout state of round `r` (all zero for rounds not opened yet); `rootHigh` is
    ///         the high 160 bits of a finalized round's rewards root (the full root is in RoundFinalized);
    ///         `unclaimed` is the open round's pool (fixed at open) for the open round, and what is left to claim
    ///         of a finalized round (0 after an empty tree or a sweep). `memberCount` (open round only, else 0):
    ///         the members counting in it, fixed when it opened minus removals since; its commit phase ends when
    ///         `commitCount` reaches it (members admitted while it is open count from the next round).
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
        );

    /// @notice All member addresses in admission order.
    function members() external view returns (address[] memory);

    /// @notice All auditor addresses in registration order.
    function auditors() external view returns (address[] memory);

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
        );

    /// @notice Weight `account` will have once its pending reputation updates are applied, counting every
    ///         finalized round it has not voted in as outcome 0 (a late vote, still possible until that round's
    ///         vote deadline, would replace that outcome).
    function effectiveWeight(address account) external view returns (uint64);

    /// @notice The current global model: sha256 of its canonical bytes and the round that produced it (0 = genesis).
    function model() external view returns (bytes32 hash, uint256 round);

    /// @notice Whether `account` already claimed its reward of `round`.
    function isClaimed(address account, uint256 round) external view returns (bool);
}
