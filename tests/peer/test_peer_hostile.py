"""Hostile and unusual peers with real `fedledger peer run` processes on anvil + IPFS.

Two federation runs cover several behaviours each (peer processes are the expensive part):
- 5 peers, Multi-Krum f=1: an equivocator (gossip ≠ commit), a wrong voter and an ALIE attacker beside two
  honest peers → the round finalizes, every peer that voted honestly computed the finalized digest, the
  equivocation is recorded, the wrong vote is on record and costs reputation; peers whose vote arrives after
  the majority finalized still vote (late) and keep their weight.
- 3 peers on a CSV task: one brings its own table via `--data FILE --label COL`, one trains with DP, one is
  silent → the round finalizes after the commit deadline without the silent peer, whose weight drops; ε and δ
  are in the DP peer's on-chain commitment.
Plus the CLI's refusals that need no running federation: bad CSV inputs, a mismatching model spec.
"""
from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from helpers.peer_proc import PeerProcess
from ledger_tools.chain import NO_DP, WEIGHT_ONE, FederationLedger
from peer.config import PeerConfig

ROOT = Path(__file__).resolve().parents[2]


def _records(peer) -> dict[int, dict]:
    doc = json.loads((peer.state_dir / "node" / "state.json").read_text())
    return {int(r): v for r, v in doc["rounds"].items()}


def _run_all(procs: list[PeerProcess], timeout: float) -> None:
    try:
        for p in procs:
            assert p.wait(timeout=timeout) == 0, p.tail()
    finally:
        for p in procs:
            p.kill()
    for p in procs:
        assert p.find(lambda e: e.get("level") == "error") is None, p.tail()


def test_equivocation_wrong_vote_and_alie_under_multi_krum(local_federation):
    fed = local_federation(5, rule="multi_krum", f=1, partition="iid", commit_period=60, vote_period=30)
    honest = fed.peers[:2]
    equivocator, wrong_voter, alie = fed.peers[2], fed.peers[3], fed.peers[4]
    procs = [PeerProcess(p.config_path, "--max-rounds", "1").start() for p in honest]
    procs += [PeerProcess(equivocator.config_path, "--max-rounds", "1", "--attack", "equivocate").start(),
              PeerProcess(wrong_voter.config_path, "--max-rounds", "1", "--attack", "wrong_vote").start(),
              PeerProcess(alie.config_path, "--max-rounds", "1", "--attack", "alie").start()]
    _run_all(procs, timeout=180)

    ledger = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    fin = ledger.finalization(1)
    assert fin is not None, "the honest majority finalized the round"
    for p in (*honest, equivocator, alie):  # everyone who voted honestly computed the same outcome
        assert _records(p)[1]["digest"] == fin.digest.hex(), p.name
    # equivocation: the gossip copy named another update; the committed blob (from IPFS) was used instead
    committed = {c.member: c for c in ledger.commitments(1)}
    assert set(committed) == {p.address for p in fed.peers}
    for p, proc in zip(honest, procs):
        assert equivocator.address in _records(p)[1]["equivocations"]
        assert proc.find(lambda e: e.get("event") == "equivocation"
                         and equivocator.address in e.get("equivocators", [])) is not None
    # the wrong vote is on record, did not win, and costs the voter its reputation
    votes = {v.member: v for v in ledger.votes(1)}
    assert votes[wrong_voter.address].digest != fin.digest
    assert ledger.member_info(wrong_voter.address).effective_weight < WEIGHT_ONE
    # every peer voted, on time or late (after the majority had finalized, before the vote deadline), and every
    # member that voted the finalized digest and was not excluded keeps its weight, late or not
    assert set(votes) == {p.address for p in fed.peers}
    assert all(votes[p.address].digest == fin.digest for p in honest)
    kept = [m for m, v in votes.items() if v.digest == fin.digest and m not in fin.excluded]
    assert {p.address for p in honest} <= set(kept)
    assert all(ledger.member_info(m).effective_weight == WEIGHT_ONE for m in kept)
    assert all(v.weight == 0 for v in votes.values() if v.late)


def _write_csv(path: Path, rows: int, seed: int, *, label: str = "outcome") -> Path:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    lines = [f"age,bp,chol,bmi,{label}"] + [",".join(f"{v:.4f}" for v in r) + f",{c}" for r, c in zip(x, y)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _peer_cmd(config: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "fedledger.cli", "peer", "run", "--config", str(config), *args]


def _outcome(proc: subprocess.Popen, timeout: float) -> tuple[int, str]:
    """(exit code, stdout + stderr) of a `peer run` started with `_peer_start`."""
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out + err


def _peer_start(config: Path, *args: str) -> subprocess.Popen:
    """A `peer run` process, started now and checked later: several refusals can start up side by side."""
    return subprocess.Popen(_peer_cmd(config, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT)


def test_csv_task_dp_and_a_silent_peer(local_federation, tmp_path):
    shared = _write_csv(tmp_path / "federation.csv", 240, seed=1)
    own = _write_csv(tmp_path / "hospital0.csv", 200, seed=2)
    # the silent peer never commits, so the round waits for the commit deadline: long enough for three peers (and
    # the refusal below, side by side) to start on a loaded 2-core machine (~40 s seen), short enough to keep the
    # test quick. The peers start at once: the deadline runs from the deployment.
    fed = local_federation(3, task=f"csv:{shared}:outcome", rule="fedavg", commit_period=60, vote_period=30)
    p0, p1, silent = fed.peers
    # the refusal needs the federation, not its round: p0's identity (a copy of its state dir, taken before p0
    # runs) with another model spec; no gossip, so it binds none of p0's ports
    twin = tmp_path / "p0-twin"
    shutil.copytree(p0.state_dir, twin)
    twin_config = PeerConfig.from_toml(p0.config_path).with_overrides(state_dir=twin).to_toml(twin / "peer.toml")
    mismatch = _peer_start(twin_config, "--task", "digits", "--max-rounds", "1", "--no-gossip")

    procs = [PeerProcess(p0.config_path, "--max-rounds", "1", "--data", str(own), "--label", "outcome").start(),
             PeerProcess(p1.config_path, "--max-rounds", "1", "--dp", "--dp-noise", "1.0").start(),
             PeerProcess(silent.config_path, "--max-rounds", "1", "--attack", "silent").start()]
    code, text = _outcome(mismatch, timeout=90)
    assert code == 2, text
    assert "model spec" in text and "Traceback" not in text
    _run_all(procs, timeout=150)

    ledger = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    fin = ledger.finalization(1)
    assert fin is not None, "finalized after the commit deadline without the silent peer"
    commits = {c.member: c for c in ledger.commitments(1)}
    assert set(commits) == {p0.address, p1.address}
    assert {v.member for v in ledger.votes(1)} == {p0.address, p1.address}
    dp = commits[p1.address]
    assert dp.epsilon_e6 != NO_DP and 0 < dp.epsilon_e6 / 1e6 < math.inf and dp.delta_e18 > 0
    assert commits[p0.address].epsilon_e6 == NO_DP
    assert ledger.member_info(silent.address).effective_weight < WEIGHT_ONE
    assert _records(p0)[1]["num_samples"] < 200  # trained on its own table (train split), not the shared one


BAD_CSV = [
    ("age,bp\n1,2\n3,4\n", "label column 'outcome' not found"),
    ("age,bp,outcome\n1,x,0\n3,4,1\n", "line 2"),
    ("", "empty"),
]


def test_bad_csv_is_one_clear_error(tmp_path):
    """No federation needed: the institution's data is checked before any endpoint is contacted. One process
    per bad table, side by side (each mostly waits for its imports)."""
    config = PeerConfig(state_dir=tmp_path / "state", contract="0x" + "11" * 20, rpc_url="http://127.0.0.1:9",
                        password_file=tmp_path / "pw").to_toml(tmp_path / "peer.toml")
    (tmp_path / "pw").write_text("x")
    started = []
    for i, (content, needle) in enumerate(BAD_CSV):
        bad = tmp_path / f"bad{i}.csv"
        bad.write_text(content)
        started.append((_peer_start(config, "--data", str(bad), "--label", "outcome"), needle))
    for proc, needle in started:
        code, out = _outcome(proc, timeout=90)
        text = " ".join(out.split())  # the console may wrap a long path
        assert code == 2, (needle, text)
        assert needle in text and "Traceback" not in text, text
        assert text.startswith("error:") and "hint:" in text, text
