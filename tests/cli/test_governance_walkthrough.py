"""README "Governance walkthrough", run for real with the CLI a user types: devnet up, four institutions deploy a
governed federation and run their peers (one equivocates, signing two envelopes per round), a fifth stakes, is
proposed, voted in and executed and runs its peer, a third party slashes the equivocator with the evidence file a
peer saved, `audit rounds` shows both, `audit verify` passes; every round finalizes, before and after each step."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devnet.anvil import dev_accounts
from devnet.processes import start_process
from helpers.peer_proc import PeerProcess
from ledger_tools.audit.history import load_history
from ledger_tools.chain import FederationLedger, RoundStatus

pytestmark = pytest.mark.timeout(600)  # ~3 min on a quiet machine

REPO = Path(__file__).resolve().parents[2]
FEDLEDGER = [sys.executable, "-m", "fedledger.cli"]
PASSWORD = "walkthrough-pw"


class CliPeer(PeerProcess):
    """`fedledger peer run` with its flags spelled out, as in the README (no peer.toml)."""

    def __init__(self, state_dir: Path, flags: list[str]) -> None:
        super().__init__(state_dir / "peer.toml", log_path=state_dir / "run.log")
        self.flags = flags

    def start(self) -> "CliPeer":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", "FEDLEDGER_PASSWORD": PASSWORD}
        self.proc = start_process([*FEDLEDGER, "peer", "run", *self.flags, "--json"], log_path=self.log_path,
                                  append=True, stdout_pipe=True, env=env, cwd=REPO)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        return self


def _wait(what: str, predicate, timeout: float, peers: list[CliPeer]) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.5)
    tails = "\n\n".join(f"{p.log_path}:\n{p.tail(15)}" for p in peers)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")


def test_governance_walkthrough(tmp_path: Path) -> None:
    env = {**os.environ, "FEDLEDGER_PASSWORD": PASSWORD, "COLUMNS": "250"}
    devnet = tmp_path / "services"  # not "devnet": a folder of that name in the cwd would shadow the package

    def cli(*args: str, timeout: float = 120, **extra_env: str) -> str:
        res = subprocess.run([*FEDLEDGER, *args], cwd=tmp_path, env={**env, **extra_env}, capture_output=True,
                             text=True, timeout=timeout)
        assert res.returncode == 0, f"fedledger {' '.join(args)}\n{res.stdout}\n{res.stderr}"
        return res.stdout

    def background(*args: str, **extra_env: str) -> subprocess.Popen:
        return subprocess.Popen([*FEDLEDGER, *args], cwd=tmp_path, env={**env, **extra_env}, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    services = json.loads(cli("devnet", "up", "-d", "--chain-port", "0", "--ipfs-port", "0", "--state-dir",
                              str(devnet), "--json"))
    peers: list[CliPeer] = []
    try:
        rpc, ipfs = services["rpc"], services["ipfs_api"]
        (tmp_path / "genesis.json").write_text(cli("devnet", "genesis", "--task", "digits", "--state-dir", str(devnet)))
        names = ["inst1", "inst2", "inst3", "inst4", "inst5", "auditor"]
        inits = {n: subprocess.Popen([*FEDLEDGER, "peer", "init", "--state-dir", str(tmp_path / n), "--json"],
                                     cwd=tmp_path, env=env, stdout=subprocess.PIPE, text=True) for n in names}
        ids = {}
        for n, proc in inits.items():
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out
            (tmp_path / f"{n}.json").write_text(out)
            ids[n] = json.loads(out)
        cli("devnet", "config", *[a for n in names[:4] for a in ("--member", f"{n}.json")], "--auditor",
            "auditor.json", "--genesis", "genesis.json", "--rule", "auto", "--f", "1", "--commit-period", "60",
            "--vote-period", "30", "--reward-eth", "1", "--funding-eth", "100", "--out", "federation.json")
        deployed = json.loads(cli("devnet", "deploy", "--config", "federation.json", "--state-dir", str(devnet),
                                  "--voting-period", "60", "--execution-delay", "0", "--json"))
        contract, governor, block = deployed["contract"], deployed["governor"], deployed["deploy_block"]
        ledger = FederationLedger(rpc, contract)
        assert ledger.owner() == governor  # the deployer kept no power
        cli("devnet", "fund", *[ids[n]["address"] for n in names[:5]], "--eth", "10", "--state-dir", str(devnet))

        def peer(i: int, *extra: str) -> CliPeer:
            d = tmp_path / f"inst{i}"
            return CliPeer(d, ["--state-dir", str(d), "--rpc", rpc, "--contract", contract, "--ipfs", ipfs,
                               "--from-block", str(block), "--task", "digits", "--partition", "iid",
                               "--num-partitions", "5", "--partition-index", str(i - 1), "--epochs", "1",
                               "--min-round-interval", "3", *extra]).start()

        peers += [peer(1), peer(2), peer(3), peer(4, "--attack", "equivocate:pair=1")]

        # the fifth institution stakes; a member proposes it, three vote for it (while rounds run)
        gov_env = {"FEDLEDGER_RPC": rpc, "FEDLEDGER_GOVERNOR": governor}
        inst5 = ids["inst5"]
        stake = background("peer", "stake", "--state-dir", "inst5", "--amount-eth", "1", **gov_env)
        out = cli("gov", "propose", "admit", "--state-dir", "inst1", "--account", inst5["address"], "--enc-key",
                  inst5["enc_key"], "--weight", "1", "--stake-eth", "1", **gov_env)
        assert "proposal 1 opened" in " ".join(out.split())
        proposed = time.monotonic()
        votes = [background("gov", "vote", "1", "--state-dir", n, **gov_env) for n in ("inst1", "inst2", "inst3")]
        for proc in [stake, *votes]:  # three institutions vote at once (each in its own terminal)
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, f"{proc.args}\n{out}\n{err}"

        def finalized() -> list[int]:
            return [f.round for f in ledger.finalizations()]

        _wait("a finalized round before the admission", lambda: finalized(), 240, peers)
        time.sleep(max(0.0, 61 - (time.monotonic() - proposed)))  # the voting period (60 s: votes take ~5-20 s)
        cli("gov", "execute", "1", "--state-dir", "inst2", **gov_env)
        assert inst5["address"] in ledger.members()
        peers.append(peer(5))

        # a peer saved the equivocator's two signed envelopes; a third party (no member) slashes with them
        cheat = ids["inst4"]["address"]
        evidence_dirs = [tmp_path / n / "evidence" for n in ("inst1", "inst2", "inst3")]

        def evidence() -> list[Path]:
            return [f for d in evidence_dirs if d.is_dir() for f in sorted(d.glob(f"*-{cheat}.json"))]

        _wait("equivocation evidence saved by a peer", lambda: evidence(), 90, peers)
        third = dev_accounts()[9].private_key
        out = cli("gov", "slash", "--evidence", str(evidence()[0]), "--key", third, **gov_env)
        assert cheat not in ledger.members()
        slashed_round = ledger.current_round()

        def after_slash_with_inst5() -> bool:
            rs = [r for r in finalized() if r > slashed_round]
            return any(any(c.member == inst5["address"] for c in ledger.commitments(r)) for r in rs)

        _wait("a finalized round after the slash that counts the fifth member", after_slash_with_inst5, 150, peers)
        for p in peers:
            p.stop()

        # the auditor sees the admission and the slash, and every round verifies (tallies: the member set in force)
        audit = ["audit", "--rpc", rpc, "--contract", contract, "--ipfs", ipfs, "--cache-dir", str(tmp_path / "cache")]
        text = " ".join(cli(*audit, "rounds").split())
        assert "4 member(s) at deployment" in text and "by proposal #1" in text, text
        assert "slashed" in text and "equivocation in round" in text and "by slashing" in text, text
        envelopes = evidence()[0].parent / "envelopes"
        text = " ".join(cli(*audit, "verify", "--state-dir", "auditor", "--evidence", str(envelopes),
                            timeout=240).split())
        assert "finalized round(s) verified" in text and "equivocation" in text, text
        history, _ = load_history(ledger, cache_dir=tmp_path / "cache")
        admitted = next(m.block for m in history.membership if m.member == inst5["address"])
        removed = next(m.block for m in history.membership if m.kind == "removed")
        assert admitted < removed
        fin = {r: rec.finalization.block_number for r, rec in history.rounds.items() if rec.finalization}
        assert any(b < admitted for b in fin.values()), f"no round finalized before the admission: {fin}"
        assert any(b > removed and history.rounds[r].commitment_of(inst5["address"]) for r, b in fin.items()), fin
        # every round finalized: the admission no longer re-opens the open round's commit phase (the round keeps
        # the members it opened with), and the slash removes the equivocator from the open round at once
        failed = sorted(r for r, rec in history.rounds.items() if rec.status == RoundStatus.FAILED)
        assert not failed, f"rounds {failed} failed (finalized: {sorted(fin)})"
    finally:
        for p in peers:
            p.stop()
        subprocess.run([*FEDLEDGER, "devnet", "down", "--state-dir", str(devnet)], cwd=tmp_path, env=env,
                       capture_output=True, timeout=60)
