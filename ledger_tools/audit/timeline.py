"""When things happened: block timestamps of the events an auditor shows, and one human-readable UTC format.

The event cache stores block numbers only; timestamps are read from the node for the blocks a report or an
export actually shows (one `eth_getBlockByNumber` per distinct block), so the history itself stays pure.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from ledger_tools.audit.history import LedgerHistory


def utc(timestamp: int | float | None) -> str:
    """`2026-12-02 10:59:46 UTC` (empty for an unknown time)."""
    if not timestamp:
        return ""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def now_utc() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def event_blocks(history: LedgerHistory) -> set[int]:
    """Every block holding a commitment, vote, finalization, failure close, claim or membership change."""
    blocks = {c.block_number for rec in history.rounds.values() for c in rec.commits}
    blocks |= {v.block_number for rec in history.rounds.values() for v in rec.votes}
    blocks |= {rec.finalization.block_number for rec in history.rounds.values() if rec.finalization is not None}
    blocks |= {rec.failed_block for rec in history.rounds.values()}
    blocks |= {c.block_number for c in history.claims}
    blocks |= {m.block for m in history.membership}
    return {b for b in blocks if b}


def block_times(w3, blocks: Iterable[int]) -> dict[int, int]:
    """block number -> its timestamp (seconds since the epoch), read from the node."""
    return {b: int(w3.eth.get_block(b)["timestamp"]) for b in sorted(set(blocks))}
