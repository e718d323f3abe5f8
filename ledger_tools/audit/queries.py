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


def round_ranges(numbers: list[int]) -> str:
    """`[3, 5, 6, 7, 9]` -> `3, 5–7, 9`: long runs of rounds stay one short line."""
    parts: list[tuple[int, int]] = []
    for n in sorted(numbers):
        if parts and parts[-1][1] == n - 1:
            parts[-1] = (parts[-1][0], n)
        else:
            parts.append((n, n))
    return ", ".join(str(a) if a == b else f"{a}–{b}" for a, b in parts)


def underpaid_warning(history: LedgerHistory) -> str | None:
    """One line naming the finalized rounds the reward pool could not pay in full, or None when all were paid."""
    short = history.underpaid()
    if not short:
        return None
    unpaid = [rec.round for rec in short if rec.finalization.pool_wei == 0]
    rewards = {history.reward_for(rec.round) for rec in short}  # each round's own reward per round
    each = f"{rewards.pop() / 10**18:g} ETH each" if len(rewards) == 1 else "each its round's reward per round"
    return (f"the reward pool could not pay {len(short)} finalized round(s) in full ({each}): "
            f"round(s) {round_ranges([rec.round for rec in short])}"
            + (f", {len(unpaid)} of them paid nothing" if unpaid else "")
            + " — the contract ran out of funds; its owner can top it up with fund()")
