"""A peer started while its chain or IPFS node is down waits for it (issue 12, finding 8 / deliverable 5).

Before: `fedledger peer run` exited at once ("cannot reach the Ethereum RPC"). Now it retries with capped
exponential backoff, one log line per attempt, for `--wait-for-services SECONDS` (0: fail at once, as before).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.anvil import AnvilProcess, start_anvil
from devnet.bootstrap import LocalFederation, create_local_federation
from devnet.ports import free_port
from helpers.peer_proc import PeerProcess
from ledger_tools.errors import Transient
from peer.startup_wait import Service, wait_for_services

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------ the wait loop (fake clock)


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def _flaky(up_at: float, clock: _Clock, exc: BaseException | None = None) -> Service:
    def probe() -> None:
        if clock.now < up_at:
            raise exc or Transient("connection refused")

    return Service("chain", "http://127.0.0.1:1", probe)


def test_backoff_doubles_up_to_the_cap_one_line_per_attempt() -> None:
    clock = _Clock()
    lines: list[tuple[str, str]] = []
    down = wait_for_services([_flaky(100, clock)], budget=300, say=lambda *a: lines.append(a), sleep=clock.sleep,
                             clock=lambda: clock.now)
    assert down == []
    assert clock.sleeps == [1, 2, 4, 8, 16, 30, 30, 30]          # capped at 30 s; up at 91 + ... ≥ 100
    waiting = [line for event, line in lines if event == "waiting"]
    assert len(waiting) == len(clock.sleeps)
    assert waiting[0] == "waiting for chain at http://127.0.0.1:1 (attempt 1, next in 1 s)"
    assert waiting[5].endswith("(attempt 6, next in 30 s)")
    assert lines[-1] == ("answering", "chain at http://127.0.0.1:1 answering after 121 s")


def test_budget_bounds_the_wait_and_zero_never_waits() -> None:
    clock = _Clock()
    service = _flaky(1000, clock)
    assert wait_for_services([service], budget=10, say=lambda *a: None, sleep=clock.sleep,
                             clock=lambda: clock.now) == [service]
    assert clock.sleeps == [1, 2, 4, 3] and clock.now == 10      # the last pause is what the budget leaves

    clock, lines = _Clock(), []
    assert wait_for_services([_flaky(1000, clock)], budget=0, say=lambda *a: lines.append(a), sleep=clock.sleep,
                             clock=lambda: clock.now)
    assert clock.sleeps == [] and lines == []


def test_only_an_unreachable_service_is_waited_for() -> None:
    """A service that answers wrongly is left to the peer's own checks, which report it at once."""
    clock = _Clock()
    wrong = _flaky(1000, clock, ValueError("not an Ethereum node"))
    assert wait_for_services([wrong], budget=60, say=lambda *a: None, sleep=clock.sleep,
                             clock=lambda: clock.now) == []
    assert clock.sleeps == []


def test_every_service_down_is_named_on_the_attempt_line() -> None:
    clock = _Clock()
    lines: list[str] = []
    ipfs = Service("IPFS", "/ip4/127.0.0.1/tcp/1/http", _flaky(3, clock).probe)
    wait_for_services([_flaky(1, clock), ipfs], budget=60, say=lambda e, line: lines.append(line),
                      sleep=clock.sleep, clock=lambda: clock.now)
    assert lines[0].startswith("waiting for chain at http://127.0.0.1:1 and IPFS at /ip4/127.0.0.1/tcp/1/http ")
    assert lines[1].startswith("waiting for IPFS at ") and "(attempt 2, next in 2 s)" in lines[1]


# ------------------------------------------------------------------ a real peer, a real chain that is down


@pytest.fixture(scope="module")
def chain_and_federation(tmp_path_factory: pytest.TempPathFactory, ipfs) -> Iterator[tuple[Path, int, LocalFederation]]:
    """A one-peer federation deployed on an anvil with a state file, then that anvil stopped (state dumped)."""
    root = tmp_path_factory.mktemp("startup-wait")
    state_file, port = root / "anvil-state.json", free_port()
    anvil = start_anvil(port, state_file=state_file, log_path=root / "anvil.log")
    try:
        fed = create_local_federation(root / "fed", 1, rpc_url=anvil.rpc_url, ipfs_api=ipfs.api_url, gossip=False,
                                      auditors=0, scrypt_n=2**12)
    finally:
        anvil.stop()
    yield state_file, port, fed


def _peer_run(fed: LocalFederation, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fedledger.cli", "peer", "run", "--config",
                           str(fed.peers[0].config_path), "--no-gossip", "--json", *args],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "COLUMNS": "1000"})


def _events(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


def test_wait_zero_fails_at_once_with_one_line(chain_and_federation) -> None:
    _, port, fed = chain_and_federation
    started = time.monotonic()
    out = _peer_run(fed, "--wait-for-services", "0")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith(f"error: cannot reach the Ethereum RPC at http://127.0.0.1:{port}")
    assert "waited" not in errors[0]
    assert not [e for e in _events(out.stdout) if e["event"] == "waiting"]
    assert time.monotonic() - started < 50  # start-up (torch, data, keystore) on a loaded machine; no wait


def test_peer_waits_for_the_chain_and_proceeds_once_it_is_up(chain_and_federation, tmp_path: Path) -> None:
    state_file, port, fed = chain_and_federation
    peer = PeerProcess(fed.peers[0].config_path, "--no-gossip", "--wait-for-services", "45",
                       log_path=tmp_path / "peer.log").start()
    anvil: AnvilProcess | None = None
    try:
        first = peer.wait_for(lambda e: e["event"] == "waiting", timeout=45)
        assert f"waiting for chain at http://127.0.0.1:{port} (attempt 1, next in 1 s)" == first["message"]
        peer.wait_for(lambda e: e["event"] == "waiting" and "(attempt 2," in e.get("message", ""), timeout=10)
        anvil = start_anvil(port, state_file=state_file, log_path=tmp_path / "anvil.log")
        answered = peer.wait_for(lambda e: e["event"] == "answering", timeout=30)
        assert answered["message"].startswith(f"chain at http://127.0.0.1:{port} answering after")
        peer.wait_for(lambda e: e["phase"] == "start" and e["event"] == "ready", timeout=40)
        assert peer.proc is not None and peer.proc.poll() is None
    finally:
        peer.stop()
        if anvil is not None:
            anvil.stop()


def test_ipfs_down_after_the_wait_is_one_line(chain_and_federation, tmp_path: Path) -> None:
    state_file, port, fed = chain_and_federation
    dead_ipfs = f"/ip4/127.0.0.1/tcp/{free_port()}/http"
    with start_anvil(port, state_file=state_file, log_path=tmp_path / "anvil.log"):
        out = _peer_run(fed, "--ipfs", dead_ipfs, "--wait-for-services", "2")
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    waiting = [e["message"] for e in _events(out.stdout) if e["event"] == "waiting"]
    assert waiting and waiting[0] == f"waiting for IPFS at {dead_ipfs} (attempt 1, next in 1 s)", out.stdout
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: cannot reach the IPFS API at {dead_ipfs} (waited 2 s)"], out.stderr
