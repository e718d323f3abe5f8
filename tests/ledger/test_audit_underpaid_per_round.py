"""The auditor's underpaid-pool flags compare each finalized round with its own round's reward per round (a vote
can change it between rounds), not with the reward in force now."""
from __future__ import annotations

import csv
import dataclasses
import io

from ledger_tools.audit.export import history_csv, history_json
from ledger_tools.audit.history import LedgerHistory, RoundRecord, RoundStatus
from ledger_tools.audit.queries import underpaid_warning
from ledger_tools.chain import Finalization, LedgerParams

ETH = 10**18


def _history(first_reward: int, changes: list[tuple[int, int]], pools: list[int]) -> LedgerHistory:
    first = LedgerParams("fedavg", 0, 0, 5000, 60, 60, first_reward, b"\0" * 32, b"\0" * 32, "bafk", 20, 1000, 0)
    now = dataclasses.replace(first, reward_per_round_wei=changes[-1][1] if changes else first_reward)
    h = LedgerHistory(chain_id=1, address="0x" + "11" * 20, params=now)
    h.first_params = first
    h.param_changes = [(r, {"reward_per_round_wei": wei}) for r, wei in changes]
    for r, pool in enumerate(pools, start=1):
        rec = RoundRecord(r, status=RoundStatus.FINALIZED)
        rec.finalization = Finalization(r, b"\1" * 32, b"\2" * 32, "bafkagg", b"\3" * 32, "bafkrw", (), 1, 1, pool,
                                        10 + r, "0x" + "ab" * 32)
        h.rounds[r] = rec
    return h


def _flags(h: LedgerHistory) -> tuple[list[int], list[bool], list[str]]:
    doc = history_json(h)
    rows = [row for row in csv.DictReader(io.StringIO(history_csv(h))) if row["kind"] == "finalized"]
    return doc["underpaid_rounds"], [r["finalized"]["underpaid"] for r in doc["rounds"]], [r["underpaid"] for r in rows]


def test_a_raised_reward_does_not_flag_earlier_rounds_paid_in_full() -> None:
    """1 ETH per round until round 3, 2 ETH from then on: rounds 1-2 paid 1 ETH in full, round 3 short."""
    h = _history(1 * ETH, [(3, 2 * ETH)], [1 * ETH, 1 * ETH, 1 * ETH, 2 * ETH])
    assert [rec.round for rec in h.underpaid()] == [3]
    assert _flags(h) == ([3], [False, False, True, False], ["false", "false", "true", "false"])
    warning = underpaid_warning(h)
    assert warning is not None and "could not pay 1 finalized round(s) in full (2 ETH each): round(s) 3" in warning


def test_a_lowered_reward_still_flags_earlier_rounds_paid_short() -> None:
    """2 ETH per round until round 3, 1 ETH from then on: round 2 paid 1 ETH was short, round 3's 1 ETH is not."""
    h = _history(2 * ETH, [(3, 1 * ETH)], [2 * ETH, 1 * ETH, 1 * ETH])
    assert [rec.round for rec in h.underpaid()] == [2]
    assert _flags(h) == ([2], [False, True, False], ["false", "true", "false"])
    assert h.reward_for(2) == 2 * ETH and h.reward_for(3) == 1 * ETH


def test_rounds_of_different_rewards_in_one_warning() -> None:
    h = _history(2 * ETH, [(2, 3 * ETH)], [1 * ETH, 0])
    warning = underpaid_warning(h)
    assert warning is not None and "(each its round's reward per round)" in warning
    assert "1 of them paid nothing" in warning
