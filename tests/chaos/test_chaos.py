"""Fault injection, short: 3 institutions + a chain/IPFS host in network namespaces run 8 rounds while a seeded
schedule kill -9s the chain node (within a second of a mined commit) and the IPFS node (both restarted on the same
port), kill -9s a peer (restarted), cuts a peer's link and skews a peer's clock. Then the four end checks of the
suite hold: `audit verify` passes for every finalized round, at most one commit and one vote per member and round,
no peer's state file contradicts the chain, and every wei funded is claimed, swept or still unallocated.

The longer run with the full schedule (disk full, degraded link, two of each crash) is `python -m bench.chaos`
(docs/reliability.md). Everything is torn down whatever happens (namespaces, processes, tmpfs).
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from bench.chaos_faults import FULL_SCHEDULE, make_schedule
from bench.chaos_net import NetnsUnavailable, probe, run_prefix
from bench.chaos_run import run_chaos
from devnet.bootstrap import LOCAL_ROUND_PARAMS

ROUNDS, PEERS, SEED = 8, 3, 11
KINDS = ("chain_kill", "ipfs_kill", "peer_kill", "link_down", "clock_skew")


def test_schedule_is_seeded_and_covers_every_fault() -> None:
    """Same seed, same schedule; the full schedule has every kind, one fault per round before the last, and at
    least one chain crash within a second of a mined commit (where a just-mined transaction can be lost)."""
    one, again = make_schedule(1, 20, 3), make_schedule(1, 20, 3)
    assert [f.to_json() for f in one] == [f.to_json() for f in again]
    assert [f.to_json() for f in one] != [f.to_json() for f in make_schedule(2, 20, 3)]
    assert {f.kind for f in one} == set(FULL_SCHEDULE) and len(one) == len(FULL_SCHEDULE)
    assert len({f.round for f in one}) == len(one) and all(2 <= f.round <= 18 for f in one)
    assert any(f.kind == "chain_kill" and f.trigger == "first_commit" and f.delay < 1 for f in one)
    assert len({f.target for f in one if f.kind == "disk_full"}) == 1
    assert all(5 <= abs(f.magnitude) <= 15 for f in one if f.kind == "clock_skew")


def test_chaos_short_schedule_keeps_the_ledger_whole(tmp_path: Path) -> None:
    try:
        probe()
    except NetnsUnavailable as exc:
        pytest.skip(f"network namespaces not available here: {exc}")
    faults = make_schedule(SEED, ROUNDS, PEERS, KINDS, duration_scale=0.5)
    assert {f.kind for f in faults} == set(KINDS)
    assert any(f.kind == "chain_kill" and f.trigger == "first_commit" for f in faults)
    prefix, net = run_prefix(), f"10.242.{os.getpid() % 200 + 20}"
    params = LOCAL_ROUND_PARAMS.replace(rule="fedavg", commit_period=45, vote_period=25)
    lines: list[str] = []
    results = run_chaos(tmp_path, rounds=ROUNDS, peers=PEERS, faults=faults, params=params, prefix=prefix,
                        subnet=net, seed=SEED, pace=12.0, say=lines.append)
    log = "\n".join(lines)

    assert results["leftover_namespaces"] == [], log
    assert prefix not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert str(tmp_path) not in Path("/proc/mounts").read_text(), "the tmpfs was left mounted"
    played = [f for f in results["faults"] if not f["result"].get("skipped")]
    assert len(played) >= 4, log
    assert all(f["result"]["recovery_s"] is not None for f in played), log
    checks = results["checks"]
    assert checks["audit"]["ok"], (checks["audit"], log)
    assert checks["once"]["ok"], checks["once"]["doubles"]
    assert checks["state"]["ok"], checks["state"]["contradictions"]
    assert checks["funds"]["ok"], checks["funds"]
    assert results["rounds_settled"] >= ROUNDS and len(results["rounds_finalized"]) >= ROUNDS - 2, log
