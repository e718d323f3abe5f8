// SPDX-License-Identifier: MIT
pragma solidity ^0.8.28;

import {IFederationLedger} from "./IFederationLedger.sol";

/// @title IFederationGovernor
/// @notice Member governance, stake and slashing of one federation. The governor owns its `FederationLedger`
///         (the deployer hands ownership over at deployment and keeps no power): admissions, removals, auditor
///         changes and governance parameters pass by a reputation-weighted vote of the members, following
///         OpenZeppelin Governor's lifecycle in miniature (propose -> vote for `votingPeriod` -> passed proposals
///         wait `executionDelay` -> anyone executes within `executionWindow`, or it expires).
///         Members stake ETH; anyone who submits a proof of misbehaviour signed by a member (two gossip envelopes
///         of one round naming different updates, or an envelope naming another update than the member
///         committed) slashes the stake and earns `reporterShareBps` of it.
/// @dev Proposal kinds, parameter ids and proposal states are uint8 constants of the implementation.
interface IFederationGovernor {
    /// @notice Governance parameters; every one can be changed by a SetParameter proposal within its bounds.
    struct GovParams {
        uint96 minStake; // wei an admission proposal must require at least
        uint16 passBps; // passes when forWeight * 10000 > passBps * totalWeight at proposal time, 5000..9999
        uint16 quorumBps; // and (for + against) * 10000 >= quorumBps * totalWeight, 1..10000
        uint32 votingPeriod; // seconds, 60 .. 30 days
        uint32 executionDelay; // seconds after the vote ends, 0 .. 30 days
        uint32 executionWindow; // seconds a passed proposal stays executable, 60 .. 90 days
        uint32 withdrawDelay; // seconds from leaving to withdrawing the stake, 60 .. 365 days
        uint16 reporterShareBps; // share of a slash paid to the reporter, 0..10000
        uint16 slashBps; // share of the stake an offence takes, 1..10000
    }

    /// @notice The signed header of a gossip envelope (peer/net/envelope_proof.py): the member's EIP-191
    ///         signature (r, s, v) covers keccak256(abi.encode(keccak256("fedledger.gossip.envelope.v2"),
    ///         federation, chainId, round, sender, updateHash, cidHash, restHash)); cidHash = keccak256(cid),
    ///         restHash = keccak256(blobSha256 | blobSize u64 | timestamp u64 | wrappedKeys), both big-endian packed.
    struct SignedEnvelope {
        address federation;
        uint64 chainId;
        uint64 round;
        address sender;
        bytes32 updateHash;
        bytes32 cidHash;
        bytes32 restHash;
        bytes32 r;
        bytes32 s;
        uint8 v;
    }

    /// @notice A transaction's signing payload and signature (`SignedTransaction.sol`): what a member signed to
    ///         send a call, provable on chain without trusting who submits it.
    struct SignedTx {
        bytes payload; // the bytes whose keccak256 the signature covers (type byte + RLP, or legacy RLP)
        uint8 yParity; // 0 or 1
        bytes32 r;
        bytes32 s;
    }

    /// @notice A proposal as stored (`state` is computed by `proposalState`).
    struct ProposalView {
        uint8 kind;
        address proposer;
        address account; // member / auditor the proposal is about (0 for SetParameter)
        bytes32 encKey; // X25519 key (admit member, register auditor)
        uint64 weight; // initial weight (admit member)
        uint8 param; // parameter id (SetParameter)
        uint256 value; // required stake (admit member) or new value (SetParameter)
        uint64 forWeight;
        uint64 againstWeight;
        uint64 totalWeight; // the ledger's total weight when proposed
        uint40 voteEnd;
        bool executed;
    }

    // ------------------------------------------------------------------ errors

    /// @notice `account` is not a member (propose, vote) or not a member's signer (slash).
    error NotMember(address account);
    /// @notice `account` is a member already (admission proposal).
    error AlreadyMember(address account);
    /// @notice Argument `name` of a proposal or of the governor's constructor is out of bounds.
    error InvalidProposal(string name);
    /// @notice The member set would leave `rule` with `n` members unable to tolerate `f` (or f >= n).
    error RuleInfeasible(string rule, uint256 f, uint256 n);
    /// @notice No proposal `id`.
    error UnknownProposal(uint256 id);
    /// @notice The vote on proposal `id` ended at `voteEnd`.
    error VotingEnded(uint256 id, uint256 voteEnd);
    /// @notice `voter` already voted on proposal `id`.
    error AlreadyVotedOnProposal(uint256 id, address voter);
    /// @notice Proposal `id` is in state `state`, not the one the call needs (see `proposalState`).
    error ProposalNotExecutable(uint256 id, uint8 state);
    /// @notice Proposal `id` is still being voted on or waits its execution delay: executable from `readyAt` on
    ///         if it passes.
    error ProposalNotReady(uint256 id, uint256 readyAt);
    /// @notice Admission needs `required` wei staked by `account` (not leaving); it has `staked`.
    error InsufficientStake(address account, uint256 required, uint256 staked);
    /// @notice The envelope is for federation (ledger) `federation`, not this one.
    error WrongFederation(address federation);
    /// @notice The envelope is for chain `chainId`, not this one.
    error WrongChain(uint256 chainId);
    /// @notice The envelope's signature was not made by its sender `sender` (or is not canonical low-s).
    error InvalidSignature(address sender);
    /// @notice The two envelopes are not an equivocation (different senders or rounds, or the same update hash).
    error NotEquivocation();
    /// @notice The commit transaction `member` signed is for another round than its envelope for `round`.
    error NotCommitted(address member, uint256 round);
    /// @notice The signed transaction is not a call of this federation's `commit`.
    error NotCommitCall();
    /// @notice `member`'s envelope for `round` names the update hash it committed: no mismatch.
    error CommitMatches(address member, uint256 round);
    /// @notice `member` was already slashed for `round` (for either offence).
    error AlreadySlashed(address member, uint256 round);
    /// @notice `account` has nothing to withdraw.
    error NothingToWithdraw(address account);
    /// @notice `account`'s stake is locked until `unlockAt` (0: it has not left; call `leave` first).
    error WithdrawLocked(address account, uint256 unlockAt);
    /// @notice Paying `amount` wei to `to` failed.
    error TransferFailed(address to, uint256 amount);
    /// @notice A call re-entered the governor.
    error ReentrantCall();

    // ------------------------------------------------------------------ events

    /// @notice Proposal `id` of `kind` by `proposer` about `account`; voting ends at `voteEnd`.
    event ProposalCreated(
        uint256 indexed id,
        address indexed proposer,
        uint8 kind,
        address account,
        bytes32 encKey,
        uint64 weight,
        uint8 param,
        uint256 value,
        uint64 totalWeight,
        uint40 voteEnd
    );
    /// @notice `voter` voted `support` on `id` with reputation weight `weight`.
    event VoteCast(uint256 indexed id, address indexed voter, bool support, uint64 weight);
    /// @notice Proposal `id` was executed by `executor`.
    event ProposalExecuted(uint256 indexed id, address indexed executor);
    /// @notice Governance parameter `param` changed to `value`.
    event ParameterChanged(uint8 param, uint256 value);
    /// @notice `account` staked `amount` wei; it now has `total` staked.
    event Staked(address indexed account, uint256 amount, uint256 total);
    /// @notice `account` left (or was removed): its `amount` wei stake unlocks at `unlockAt`.
    event WithdrawRequested(address indexed account, uint256 amount, uint256 unlockAt);
    /// @notice `account` withdrew `amount` wei of stake.
    event Withdrawn(address indexed account, uint256 amount);
    /// @notice `member` was slashed `amount` wei for `offence` (1 = equivocation, 2 = commit mismatch) in `round`; `reporter` got
    ///         `reward`; `removed` = it stopped being a member.
    event Slashed(
        address indexed member, uint256 indexed round, uint8 offence, address reporter, uint256 amount, uint256 reward,
        bool removed
    );
    /// @notice `amount` wei of slashed stake went to the ledger's reward pool.
    event SlashedForwarded(uint256 amount);

    // ------------------------------------------------------------------ governance

    /// @notice Propose admitting `account` (members only); it must have staked at least `stake` (>= minStake)
    ///         when the proposal executes.
    function proposeAdmit(address account, bytes32 encKey, uint64 weight, uint256 stake) external returns (uint256);
    /// @notice Propose removing member `account` (members only); refused if the rest could not aggregate.
    function proposeRemove(address account) external returns (uint256);
    /// @notice Propose registering auditor `account` with X25519 key `encKey` (members only).
    function proposeRegisterAuditor(address account, bytes32 encKey) external returns (uint256);
    /// @notice Propose removing auditor `account` (members only).
    function proposeRemoveAuditor(address account) external returns (uint256);
    /// @notice Propose setting governance parameter `param` to `value` (members only), within its bounds.
    function proposeParameter(uint8 param, uint256 value) external returns (uint256);
    /// @notice Propose new ledger round parameters (members only), applied by the ledger from its next round
    ///         after execution. Checked here and again at execution: InvalidProposal(<name>) for the ledger's bounds
    ///         and periods outside MIN_ROUND_PERIOD .. MAX_ROUND_PERIOD, RuleInfeasible when the rule cannot tolerate
    ///         f with the members at that time, UnknownRule for an unknown rule name.
    function proposeRoundParams(IFederationLedger.RoundParamsUpdate calldata u) external returns (uint256);
    /// @notice Vote on proposal `id` with the caller's current reputation weight (members only, once).
    function castVote(uint256 id, bool support) external;
    /// @notice Execute passed proposal `id` after its delay, within its window (anyone).
    function execute(uint256 id) external;

    // ------------------------------------------------------------------ stake and slashing

    /// @notice Add `msg.value` to the caller's stake (members and candidates).
    function stake() external payable;
    /// @notice Leave the federation (a member) or withdraw a candidacy: the stake unlocks after withdrawDelay.
    function leave() external;
    /// @notice Pay the caller's unlocked stake.
    function withdraw() external;
    /// @notice Slash the member that signed both envelopes (their signed headers) for one round of this
    ///         federation and chain with different update hashes (anyone; the caller is rewarded).
    function slashEquivocation(SignedEnvelope calldata a, SignedEnvelope calldata b) external;
    /// @notice Slash the member that signed envelope `e` naming another update hash than the one it committed for
    ///         that round, as its own signed `commit` transaction `commitTx` shows (anyone; the caller is
    ///         rewarded). The ledger takes commitments only as the top-level call of the member's own transaction
    ///         (`NotDirectCall`), so that transaction - on chain, fetched by its hash - is the proof; a signed
    ///         commit for the round that never mined proves the same contradiction.
    function slashCommitMismatch(SignedEnvelope calldata e, SignedTx calldata commitTx) external;
    /// @notice Send slashed stake not paid to reporters to the ledger's reward pool (anyone).
    function forwardSlashed() external;

    // ------------------------------------------------------------------ views

    function ledger() external view returns (address);
    function params() external view returns (GovParams memory);
    function proposalCount() external view returns (uint256);
    function proposal(uint256 id) external view returns (ProposalView memory);
    function proposalState(uint256 id) external view returns (uint8);
    function hasVoted(uint256 id, address voter) external view returns (bool);
    /// @notice The round parameters proposal `id` sets (UnknownProposal unless it is a round-parameter proposal).
    function roundParamsProposal(uint256 id) external view returns (IFederationLedger.RoundParamsUpdate memory);
    function stakeOf(address account) external view returns (uint256 amount, uint256 unlockAt, bool bonded);
    function minValidUpdates(string calldata rule, uint256 f) external pure returns (uint256);
}
