"""One chaos run: topology up, services, federation, peers; the fault schedule played; the end checks; teardown.

A small supervisor plays the operator's service manager: a peer process that exits before its last round
(a crash, a full disk, a chain that was down when it started) is restarted after a short pause, unless a fault
holds it down on purpose; every such restart is recorded. Recovery of a fault is measured from the moment it
is lifted: for a peer fault, until that peer does its part again (its log shows a mined commit or vote, or a
finalized round); for a chain or IPFS crash, until the next round is finalized on chain.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from web3 import Web3

from bench.chaos_checks import run_checks
from bench.chaos_cluster import Cluster
from bench.chaos_faults import PEER_KINDS, Fault, disk_peer_of, inject, lift
from bench.chaos_net import Topology, run_prefix, sweep_stale
from ledger_tools.chain import FederationLedger, LedgerError
from ledger_tools.config import RoundParams

RESTART_PAUSE = 3.0


def _progress(event: dict[str, Any]) -> bool:
    """A peer log line that shows the peer doing its part again: a mined commit or vote, a finalized round."""
    return ((event.get("phase") in ("commit", "vote") and event.get("event") == "mined")
            or (event.get("phase") == "round" and event.get("event") == "finalized"))


class ChainDown(Exception):
    """The chain did not answer (it is down or restarting)."""


class Monitor:
    """Reads the ledger from the host; every read raises ChainDown while the chain is away."""

    def __init__(self, rpc_url: str, contract: str, deploy_block: int) -> None:
        w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 5}))
        self.ledger = FederationLedger(rpc_url, contract, deploy_block=deploy_block, w3=w3)

    def _read(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (LedgerError, OSError, ValueError) as exc:
            raise ChainDown(str(exc)) from exc

    def current_round(self) -> int:
        return self._read(self.ledger.current_round)

    def block(self) -> int:
        return self._read(lambda: int(self.ledger.w3.eth.block_number))

    def commits_in(self, r: int) -> int:
        return len(self._read(lambda: self.ledger.commitments(r)))

    def finalized_from(self, r: int) -> int | None:
        """The first round >= r that is finalized, if any."""
        now = self.current_round()
        return next((x for x in range(r, now) if self._read(lambda x=x: self.ledger.finalization(x)) is not None), None)


class ChaosRun:
    def __init__(self, workdir: Path, *, rounds: int, peers: int, faults: list[Fault], params: RoundParams,
                 prefix: str, subnet: str, seed: int, pace: float = 0.0,
                 say: Callable[[str], None] = print) -> None:
        self.workdir, self.rounds, self.n, self.faults, self.seed = Path(workdir), rounds, peers, faults, seed
        self.topo = Topology(prefix, subnet, peers)
        self.cluster = Cluster(self.workdir, self.topo, rounds=rounds, params=params, disk_peer=disk_peer_of(faults),
                               pace=pace)
        self.say = say
        self.held: set[int] = set()
        self.done: set[int] = set()
        self.restarts: list[dict[str, Any]] = []
        self.last_start: dict[int, float] = {}
        self.t0 = time.monotonic()
        self.monitor: Monitor | None = None

    def now(self) -> float:
        return round(time.monotonic() - self.t0, 1)

    # ---- supervision -------------------------------------------------------------------------------------
    def supervise(self) -> None:
        for i, peer in enumerate(self.cluster.peers):
            if i in self.held or i in self.done or peer.running() or peer.proc is None:
                continue
            code = peer.proc.returncode
            if code == 0:
                self.done.add(i)
                continue
            if time.monotonic() - self.last_start.get(i, 0.0) < RESTART_PAUSE:
                continue
            self.restarts.append({"peer": i, "t": self.now(), "exit_code": code})
            self.say(f"supervisor: peer{i} exited ({code}); restarting it")
            peer.start()
            self.last_start[i] = time.monotonic()

    def wait(self, cond: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.supervise()
            try:
                if cond():
                    return True
            except ChainDown:
                pass
            time.sleep(0.5)
        return False

    def hold(self, seconds: float) -> None:
        self.wait(lambda: False, seconds)

    # ---- the run -----------------------------------------------------------------------------------------
    def start(self) -> None:
        stale = sweep_stale()
        if stale:
            self.say(f"removed the namespaces of dead chaos runs: {', '.join(stale)}")
        self.say(f"network: {len(self.topo.machines)} namespaces on {self.topo.bridge} ({self.topo.subnet}.0/24)")
        self.topo.up()
        self.cluster.start_service("anvil")
        self.cluster.start_service("ipfs")
        fed = self.cluster.create(self.n, seed=self.seed)
        self.monitor = Monitor(self.cluster.rpc_url, fed.contract, fed.deploy_block)
        self.cluster.start_peers()
        self.t0 = time.monotonic()
        self.say(f"federation {fed.contract}: {self.n} peers, {self.rounds} rounds, {len(self.faults)} faults")

    def play(self, fault: Fault) -> None:
        m, c = self.monitor, self.cluster
        assert m is not None and c.fed is not None
        round_len = c.params.commit_period + c.params.vote_period
        self.wait(lambda: m.current_round() >= fault.round, 4 * round_len)
        if (self._round_or_none() or 0) > self.rounds or len(self.done) == self.n:
            fault.result.update(skipped="the run was over before this fault's turn")
            self.say(f"skip {fault.label()}: {fault.result['skipped']}")
            return
        if fault.trigger == "first_commit":
            r = m.current_round()
            self.wait(lambda: m.commits_in(r) >= 1 or m.current_round() > r, 2 * round_len)
        self.hold(fault.delay)
        res = fault.result
        try:
            res["round"], res["block_before"] = m.current_round(), m.block()
        except ChainDown:
            res["round"] = None
        res["injected_at"] = self.now()
        wall_injected = time.time()
        self.say(f"t={res['injected_at']:6.1f}s round {res['round']}: inject {fault.label()} for {fault.duration:.1f}s")
        inject(fault, c, self.held)
        self.hold(fault.duration)
        lift(fault, c, self.held)
        res["lifted_at"] = self.now()
        healed = time.monotonic()
        if fault.kind == "chain_kill":
            self.wait(lambda: m.block() >= 0, 30)
            try:
                res["block_after_restart"] = m.block()
                res["blocks_lost"] = max(0, res.get("block_before", 0) - res["block_after_restart"])
            except ChainDown:
                res["blocks_lost"] = None
        heal_round = self._round_or_none()
        recovered = False
        timeout = 4 * round_len
        if fault.kind in PEER_KINDS:
            peer = c.peers[fault.target]
            seen = len(peer.events)
            # or it settled its last round and exited: nothing more for it to do
            recovered = self.wait(lambda: any(map(_progress, peer.events[seen:]))
                                  or (not peer.running() and peer.proc is not None and peer.proc.returncode == 0),
                                  timeout)
            res["recovered_by"] = f"peer{fault.target} back at work"
        else:
            since = heal_round or res.get("round") or 1
            recovered = self.wait(lambda: m.finalized_from(since) is not None, timeout)
            res["recovered_by"] = "a round finalized"
        res["recovery_s"] = round(time.monotonic() - healed, 1) if recovered else None
        vanished = [e for p in c.peers for e in list(p.events)
                    if e.get("event") == "vanished" and e.get("ts", 0) >= wall_injected - 2]
        res["txs_vanished_resent"] = len(vanished)
        self.say(f"t={self.now():6.1f}s   lifted; " + (f"recovered in {res['recovery_s']}s" if recovered
                                                       else f"NOT recovered within {timeout}s"))

    def _round_or_none(self) -> int | None:
        assert self.monitor is not None
        try:
            return self.monitor.current_round()
        except ChainDown:
            return None

    def finish(self) -> dict[str, Any]:
        """Wait for every peer to settle the last round, stop them, run the end checks."""
        c = self.cluster
        round_len = c.params.commit_period + c.params.vote_period
        remaining = max(0, self.rounds - (self._round_or_none() or 0) + 1)
        finished = self.wait(lambda: len(self.done) == self.n, 120 + remaining * 2 * round_len)
        unfinished = [i for i in range(self.n) if i not in self.done]
        for i in unfinished:
            c.peers[i].kill()
        wall = self.now()
        self.say(f"t={wall:6.1f}s peers finished" + ("" if finished else f" except {unfinished} (killed)"))
        assert c.fed is not None
        checks = run_checks(c.fed, self.workdir, self.rounds, say=self.say)
        return {"wall_seconds": wall, "peers_unfinished": unfinished, "restarts": self.restarts,
                "peer_starts": [p.starts for p in c.peers], **checks}

    def close(self) -> None:
        self.cluster.close()
        self.topo.down()


def run_chaos(workdir: Path, *, rounds: int, peers: int, faults: list[Fault], params: RoundParams,
              prefix: str | None = None, subnet: str = "10.241.0", seed: int = 0, pace: float = 0.0,
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """Run a whole chaos experiment and return its results (always tears everything down). `pace`: seconds
    each round waits after it opens before peers commit (keeps rounds from outrunning the schedule)."""
    run = ChaosRun(workdir, rounds=rounds, peers=peers, faults=faults, params=params, prefix=prefix or run_prefix(),
                   subnet=subnet,
                   seed=seed, pace=pace, say=say)
    try:
        run.start()
        for fault in faults:
            run.play(fault)
        results = run.finish()
    finally:
        run.close()
        leftovers = run.topo.leftovers()
    results["leftover_namespaces"] = leftovers
    results["faults"] = [f.to_json() for f in faults]
    return results
