"""The chain adapter: a typed binding of contracts/FederationLedger.sol over web3 8.

- `errors`   — `LedgerError` and one `ContractRevert` subclass per Solidity custom error;
- `records`  — pure data: parameters, views, receipts, one record per event (no web3 import);
- `events`   — the event-log reads; `binding` — `FederationLedger`, reads and transactions.
"""
from ledger_tools.chain.binding import ARTIFACT_PATH, FederationLedger
from ledger_tools.chain.errors import (
    ERRORS,
    AlreadyAuditor,
    AlreadyClaimed,
    AlreadyCommitted,
    AlreadyMember,
    AlreadySettled,
    AlreadyVoted,
    CommitClosed,
    ContractRevert,
    DigestMismatch,
    ExcludedNotSorted,
    InvalidParameter,
    InvalidProof,
    LedgerError,
    LedgerUnavailable,
    LengthMismatch,
    NotFinalized,
    NotMember,
    PoolExceeded,
    InvalidMultiaddrLength,
    ReentrantCall,
    RoundNotOpen,
    TransactionFailed,
    TransferFailed,
    Unauthorized,
    VoteDeadlineNotReached,
    VoteOutOfOrder,
    VotingClosed,
    VotingNotOpen,
)
from ledger_tools.chain.records import (
    NO_DP,
    WEIGHT_ONE,
    Announcement,
    AuditorInfo,
    AuditorInit,
    Claim,
    ClaimReceipt,
    Commitment,
    Finalization,
    GlobalModel,
    LedgerParams,
    MemberInfo,
    MemberInit,
    Phase,
    RoundInfo,
    RoundStatus,
    TxReceipt,
    Vote,
    VoteReceipt,
    WeightUpdate,
)

__all__ = [
    "ARTIFACT_PATH", "ERRORS", "NO_DP", "WEIGHT_ONE", "Announcement", "AlreadyAuditor", "AlreadyClaimed", "AlreadyCommitted",
    "AlreadyMember", "AlreadySettled", "AlreadyVoted", "AuditorInfo", "AuditorInit", "Claim", "ClaimReceipt",
    "CommitClosed", "Commitment", "ContractRevert", "DigestMismatch", "ExcludedNotSorted", "FederationLedger",
    "Finalization", "GlobalModel", "InvalidMultiaddrLength", "InvalidParameter", "InvalidProof", "LedgerError", "LedgerParams",
    "LedgerUnavailable", "LengthMismatch", "MemberInfo", "MemberInit", "NotFinalized", "NotMember", "Phase",
    "PoolExceeded", "ReentrantCall", "RoundInfo", "RoundNotOpen", "RoundStatus", "TransactionFailed",
    "TransferFailed", "TxReceipt", "Unauthorized", "Vote", "VoteDeadlineNotReached", "VoteOutOfOrder", "VoteReceipt",
    "VotingClosed", "VotingNotOpen", "WeightUpdate",
]
