"""Did a round's tally use the member set in force? Checked from the event log alone, for `audit verify`.

Membership changes by vote, exit or slashing while rounds run, so "who may vote, with what weight" is not a
constant: it is the member set at the moment of each vote (a removal takes effect at once, an admission when the
next round opens; a removed member's earlier vote stays in its round's tally). `LedgerHistory.from_events`
replays admissions, removals and reputation updates in chain order and records, next to every on-time vote,
whether its voter was a member then and its weight then (`RoundRecord.in_force`), and the total weight in force
at finalization. Here each finalized round is held to it: every counted vote from a member in force with its
weight then, the finalizing weight equal to the sum of those votes for the finalized digest, the total weight
equal to the set in force, and the quorum met.
"""
from __future__ import annotations

from ledger_tools.audit.history import LedgerHistory, RoundRecord, short
from ledger_tools.audit.verification import Finding, Severity

BPS = 10_000


def tally_findings(history: LedgerHistory, rec: RoundRecord) -> list[Finding]:
    """Mismatches between round `rec`'s tally and the member set in force (empty when it is consistent)."""
    out: list[Finding] = []

    def mismatch(detail: str, peer: str | None = None) -> None:
        out.append(Finding(rec.round, Severity.MISMATCH, "tally", detail, peer))

    for v in rec.in_force:
        if not v.was_member:
            mismatch(f"vote (block {v.block}) counted with weight {v.counted}, but the voter was not a member "
                     "then (not admitted, or already removed)", v.member)
        elif v.counted != v.weight_then:
            mismatch(f"vote (block {v.block}) counted with weight {v.counted}, but the voter's weight then was "
                     f"{v.weight_then}", v.member)
    fin = rec.finalization
    if fin is None or rec.total_weight_then is None:
        return out
    voted_for = sum(v.weight_then for v in rec.in_force if v.was_member and v.digest == fin.digest)
    if fin.weight_for != voted_for:
        mismatch(f"finalized digest {short(fin.digest)} with weight {fin.weight_for}, but the members in force "
                 f"voted {voted_for} for it")
    if fin.total_weight != rec.total_weight_then:
        mismatch(f"finalized against a total weight of {fin.total_weight}, but the members in force then weighed "
                 f"{rec.total_weight_then}")
    quorum = history.params_for(rec.round).quorum_bps
    if voted_for * BPS <= quorum * rec.total_weight_then:
        mismatch(f"finalized with {voted_for} of {rec.total_weight_then} weight from members in force: not above "
                 f"the quorum of {quorum / 100:g} %")
    return out

