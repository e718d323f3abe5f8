"""The ledger's event log, read as records: commitments, votes, finalizations, claims, reputation changes.

A mixin of `FederationLedger` (which supplies `contract`, `deploy_block`, `current_round` and the RPC guard around
`_logs`), kept apart so the binding's transaction plumbing and its history reads can each be read on their own.
"""
from __future__ import annotations

from typing import Any

from eth_utils import to_checksum_address

from ledger_tools.chain.records import Announcement, Claim, Commitment, Finalization, Sweep, Vote, WeightUpdate


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _record(cls: Any, log: Any) -> Any:
    """Decode a web3 event log into its record type."""
    return cls.from_event(log.args, log.blockNumber, _hex(log.transactionHash))


class LedgerEvents:
    """Event reads of one deployed federation."""

    def _logs(self, event: str, filters: dict[str, Any] | None) -> list[Any]:
        raise NotImplementedError  # FederationLedger reads the logs (RPC-guarded)

    def current_round(self) -> int:
        raise NotImplementedError

    def commitments(self, round_: int) -> list[Commitment]:
        """The round's commitments in canonical peer order (addresses ascending)."""
        out = [_record(Commitment, e) for e in self._logs("Committed", {"round": round_})]
        return sorted(out, key=lambda c: int(c.member, 16))

    def votes(self, round_: int) -> list[Vote]:
        """The round's votes in chain order, late votes (`.late`, cast after finalization) included."""
        return [_record(Vote, e) for e in self._logs("Voted", {"round": round_})]

    def finalization(self, round_: int) -> Finalization | None:
        logs = self._logs("RoundFinalized", {"round": round_})
        return _record(Finalization, logs[0]) if logs else None

    def finalizations(self) -> list[Finalization]:
        return [f for f in (self.finalization(r) for r in range(1, self.current_round())) if f is not None]

    def failed_rounds(self) -> list[int]:
        return [e.args.round for e in self._logs("RoundFailed", None)]

    def claims(self, account: str | None = None) -> list[Claim]:
        filters = {"account": to_checksum_address(account)} if account else None
        return [_record(Claim, e) for e in self._logs("Claimed", filters)]

    def sweeps(self) -> list[Sweep]:
        """Every sweep of an unclaimed reward back to the pool, in chain order."""
        return [_record(Sweep, e) for e in self._logs("Swept", None)]

    def funded_wei(self) -> int:
        """Wei ever sent to the reward pool: every `Funded` event (deployment value, fund(), plain transfers)."""
        return sum(int(e.args.amount) for e in self._logs("Funded", None))

    def weight_updates(self, member: str | None = None) -> list[WeightUpdate]:
        filters = {"member": to_checksum_address(member)} if member else None
        return [_record(WeightUpdate, e) for e in self._logs("WeightUpdated", filters)]

    def admissions(self) -> list[tuple[str, bytes, int]]:
        """(member, enc key, initial weight) of every admission, in order."""
        return [(e.args.member, bytes(e.args.encKey), e.args.weight) for e in self._logs("MemberAdmitted", None)]

    def announcements(self) -> dict[str, Announcement]:
        """Each member's latest announced gossip multiaddr (members that never announced are absent)."""
        latest: dict[str, Announcement] = {}
        for e in self._logs("MemberAnnounced", None):
            record = _record(Announcement, e)
            latest[record.member] = record
        return latest
