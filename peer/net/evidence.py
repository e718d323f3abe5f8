"""Signed gossip envelopes saved by peers, admitted as equivocation evidence under the gossip topic's own rules.

An auditor may be handed envelope files (`fedledger audit verify --evidence DIR`). Each one counts only if the
federation's gossip validator (`peer.net.envelope.EnvelopeValidator`) would have admitted it — well-formed, signed
by its sender, for this federation *and* chain (a same-address contract on another chain is a replay), sent by
a member — at any round; the same signed envelope saved twice counts once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ledger_tools.audit.history import LedgerHistory
from ledger_tools.audit.verification import SignedClaim
from peer.net.admission import DropReason, EnvelopeValidator
from peer.net.envelope import Envelope

_ANY_ROUND = 2**64


@dataclass(frozen=True)
class IgnoredEvidence:
    source: str
    reason: str


def _validator(history: LedgerHistory) -> EnvelopeValidator:
    members = {m.lower() for m in history.members}
    return EnvelopeValidator(history.address, history.chain_id, is_member=lambda a: a.lower() in members,
                             current_round=lambda: 0, rounds_behind=0, rounds_ahead=_ANY_ROUND)


def load_evidence(directory: Path, history: LedgerHistory) -> tuple[list[SignedClaim], list[IgnoredEvidence]]:
    """The admissible envelopes among the files of `directory` (sorted by name) as claims, and why the others
    were ignored."""
    validator = _validator(history)
    claims: list[SignedClaim] = []
    ignored: list[IgnoredEvidence] = []
    seen: set[bytes] = set()
    for path in sorted(directory.glob("*")):
        if not path.is_file():
            continue
        try:
            verdict = validator.check(path.read_bytes())
        except OSError as exc:
            ignored.append(IgnoredEvidence(path.name, str(exc)))
            continue
        env = verdict.message
        if verdict.reason is DropReason.WRONG_FEDERATION:
            why = f"envelope of federation {env.federation} on chain {env.chain_id}, not this one"
        elif verdict.reason is DropReason.NON_MEMBER:
            why = f"sender {env.sender} is not a member of the federation"
        elif verdict.reason is not None:
            why = verdict.detail
        elif not isinstance(env, Envelope):
            why = "a blob chunk, not an envelope"
        elif env.body_id() in seen:
            why = "duplicate of an envelope already read"
        else:
            seen.add(env.body_id())
            claims.append(SignedClaim(env.round, env.sender, env.update_hash, env.cid, path.name))
            continue
        ignored.append(IgnoredEvidence(path.name, why))
    return claims, ignored
