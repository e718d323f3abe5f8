"""The auditor's API in one import: the ledger's history (`history`), questions about it (`queries`), and its
independent re-verification from chain + IPFS (`verification`). Each concern lives in its own module."""
from __future__ import annotations

from ledger_tools.audit.history import LedgerHistory, RoundRange, RoundRecord, RoundStatus, load_history, short
from ledger_tools.audit.queries import PeerHistory, PeerRound, peer_history
from ledger_tools.audit.verification import (
    Finding,
    RoundVerification,
    Severity,
    SignedClaim,
    Unseal,
    VerificationReport,
    equivocation_findings,
    verify_history,
    verify_round,
)

__all__ = [
    "Finding", "LedgerHistory", "PeerHistory", "PeerRound", "RoundRange", "RoundRecord", "RoundStatus",
    "RoundVerification", "Severity", "SignedClaim", "Unseal", "VerificationReport", "equivocation_findings",
    "load_history", "peer_history", "short", "verify_history", "verify_round",
]
