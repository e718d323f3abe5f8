"""Questions an auditor or a contributor asks of a `LedgerHistory`: one member's record across the rounds."""
from __future__ import annotations

from dataclasses import dataclass

from ledger_tools.audit.history import LedgerHistory


@dataclass(frozen=True)
class PeerRound:
    round: int
    committed: bool
    voted: bool
    agreed: bool | None  # voted the finalized digest (None: round not finalized or no vote)
    excluded: bool
    reward: int | None  # None: not known without the reward tree
    claimed: bool
    epsilon: float | None
    delta: float | None


@dataclass(frozen=True)
class PeerHistory:
    address: str
    is_member: bool
    admitted_block: int | None
    rounds: tuple[PeerRound, ...]
    total_claimed: int
    weight_updates: tuple[tuple[int, int], ...]  # (block, new weight)

    @property
    def commits(self) -> int:
        return sum(r.committed for r in self.rounds)

    @property
    def votes(self) -> int:
        return sum(r.voted for r in self.rounds)

    @property
    def agreements(self) -> int:
        return sum(bool(r.agreed) for r in self.rounds)

    @property
    def times_excluded(self) -> int:
        return sum(r.excluded for r in self.rounds)

    @property
    def earned(self) -> int:
        return sum(r.reward or 0 for r in self.rounds)

    @property
    def epsilon_total(self) -> float | None:
        """Sum of the per-round epsilons (basic composition, an upper bound); None when no round used DP."""
        spent = [r.epsilon for r in self.rounds if r.epsilon is not None]
        return sum(spent) if spent else None


def peer_history(history: LedgerHistory, address: str, rewards: dict[int, int] | None = None) -> PeerHistory:
    """A member's record; `rewards` (round -> amount, from the reward trees) fills in earnings."""
    key = address.lower()
    claimed = history.claimed_rounds(address)
    rows = []
    for r in sorted(history.rounds):
        rec = history.rounds[r]
        commit = rec.commitment_of(address)
        vote = rec.vote_of(address)
        fin = rec.finalization
        agreed = None if fin is None or vote is None else vote.digest == fin.digest
        excluded = fin is not None and any(e.lower() == key for e in fin.excluded)
        if commit is None and vote is None and not excluded and r not in claimed:
            continue
        rows.append(PeerRound(
            round=r, committed=commit is not None, voted=vote is not None, agreed=agreed, excluded=excluded,
            reward=None if rewards is None else rewards.get(r, 0), claimed=r in claimed,
            epsilon=commit.epsilon if commit else None, delta=commit.delta if commit else None,
        ))
    member = next((m for m in history.members if m.lower() == key), None)
    return PeerHistory(
        address=member or address, is_member=member is not None,
        admitted_block=history.members.get(member) if member else None, rounds=tuple(rows),
        total_claimed=sum(claimed.values()),
        weight_updates=tuple(history.weights.get(member, [])) if member else (),
    )
