"""The `verify` verdict of every round, as a report embeds it: from a verification run by the report itself or
from the JSON `fedledger audit verify --json` printed earlier (checked to be about the same federation)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ledger_tools.audit.history import LedgerHistory
from ledger_tools.audit.verification import Finding, Severity, VerificationReport
from ledger_tools.errors import LedgerToolsError


class VerdictFileError(LedgerToolsError):
    """A verification JSON that is unreadable, malformed, or about another federation."""


@dataclass(frozen=True)
class Verdicts:
    """round -> verified (True/False; None: open, nothing to verify) and the findings behind them."""

    source: str  # how the verdicts were obtained, stated in the report
    rounds: dict[int, bool | None]
    findings: Sequence[Finding] = field(default_factory=tuple)
    auditor: str | None = None

    @property
    def mismatches(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.MISMATCH]

    @property
    def ok(self) -> bool:
        return not self.mismatches

    def of_round(self, r: int) -> list[Finding]:
        return [f for f in self.findings if f.round == r]

    @classmethod
    def from_report(cls, report: VerificationReport, *, source: str, auditor: str | None) -> "Verdicts":
        return cls(source, {res.round: res.verified for res in report.rounds}, tuple(report.findings), auditor)

    @classmethod
    def from_json(cls, text: str, history: LedgerHistory, *, source: str) -> "Verdicts":
        """From `audit verify --json` output; refuses one made for another contract or chain."""
        try:
            doc: dict[str, Any] = json.loads(text)
            findings = tuple(Finding.from_json(f) for f in doc.get("findings", []))
            if "rounds" in doc:
                rounds = {int(x["round"]): x["verified"] for x in doc["rounds"]}
            else:  # older output: the checked rounds, verified unless a mismatch names them
                bad = {f.round for f in findings if f.severity is Severity.MISMATCH}
                rounds = {int(r): int(r) not in bad
                          for r in [*doc["rounds_checked"], *doc.get("failed_rounds_checked", [])]}
        except (ValueError, KeyError, TypeError) as exc:
            raise VerdictFileError(f"not the output of `fedledger audit verify --json`: {exc}") from None
        contract, chain = doc.get("contract"), doc.get("chain_id")
        if contract is not None and contract.lower() != history.address.lower():
            raise VerdictFileError(f"it verifies contract {contract}, this report is about {history.address}")
        if chain is not None and int(chain) != history.chain_id:
            raise VerdictFileError(f"it verifies chain {chain}, this report is about chain {history.chain_id}")
        if doc.get("block"):
            source += f" (verified up to block {doc['block']}"
            source += f", {doc['generated_at']})" if doc.get("generated_at") else ")"
        return cls(source, rounds, findings, doc.get("auditor"))
