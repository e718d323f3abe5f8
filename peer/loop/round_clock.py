"""The round's phase judged by the wall clock, and sending transactions that only become valid with time.

Why not ask the contract's `phase(r)`: deadlines are block timestamps, and on a chain that mines only on
demand (anvil, quiet L2s) the latest block can be minutes old, so `phase(r)` — and gas estimation, which
also runs against the latest block — lag behind. The block that will include our next transaction is
stamped with the current time, so the node judges open rounds by `time.time()` against the round's
deadlines (with a little slack for clock skew) and sends time-dependent transactions (vote, closeFailedRound)
with a fixed gas limit when the estimate says "too early".
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from ledger_tools.chain import Phase as ChainPhase
from ledger_tools.chain import RoundInfo, RoundStatus, VoteDeadlineNotReached, VotingNotOpen

R = TypeVar("R")

CLOCK_SLACK = 1.0   # seconds between wall clock and block timestamps we tolerate
CLOSE_GAS = 200_000


def vote_gas(excluded: int) -> int:
    """A gas limit that covers a vote with `excluded` addresses, including one that finalizes the round."""
    return 400_000 + 10_000 * excluded


def judge_phase(info: RoundInfo, member_count: int, now: float, slack: float = CLOCK_SLACK) -> ChainPhase:
    """The phase of an (open or settled) round at wall-clock time `now`, as the next block will see it: the
    contract's rule (`RoundInfo.phase_at`) with `slack` seconds of clock skew."""
    return info.phase_at(now, member_count, slack)


def commit_window_open(info: RoundInfo, member_count: int, now: float, margin: float) -> bool:
    """True while a commit sent now would still land before the commit deadline (with `margin` seconds spare)."""
    if info.status != RoundStatus.OPEN or info.commit_count >= member_count:
        return False
    return now < info.commit_deadline - margin


def send_time_dependent(send: Callable[[int | None], R], gas: int) -> R:
    """`send(None)` (estimated gas); if the estimate reverts as "too early" against the stale latest block,
    `send(gas)`: the transaction's own block carries the current time. Any other revert propagates."""
    try:
        return send(None)
    except (VotingNotOpen, VoteDeadlineNotReached):
        return send(gas)
