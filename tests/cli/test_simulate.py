"""The in-process simulator: deterministic ledger-free runs, and on-chain runs that finalize their rounds."""
from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from fedledger.cli import app
from peer.learning.tasks import get_task
from peer.learning.training import train_batched, train_local
from simulation.chain_transport import ChainTransport
from simulation.config import SimConfig, SimError
from simulation.engine import SimEngine

SMALL = dict(task="digits", peers=5, byzantine=1, attack="sign_flip", rule="multi_krum", rounds=2, local_epochs=1)


def test_ledger_free_run_is_deterministic() -> None:
    first = SimEngine(SimConfig(**SMALL)).run()
    second = SimEngine(SimConfig(**SMALL)).run()
    other_seed = SimEngine(SimConfig(**SMALL, seed=1)).run()
    assert first.final_model_hash == second.final_model_hash
    assert [r.aggregate_hash for r in first.rounds] == [r.aggregate_hash for r in second.rounds]
    assert first.final_model_hash != other_seed.final_model_hash
    assert all(r.finalized for r in first.rounds)


def test_byzantine_sign_flip_is_not_rewarded_by_multi_krum() -> None:
    result = SimEngine(SimConfig(**{**SMALL, "rounds": 3})).run()
    assert all(r.rejected_byzantine == 1 for r in result.rounds)
    assert result.final_accuracy > result.genesis_accuracy + 0.2
    summary = result.summary()
    assert summary["not_rewarded_byzantine"] == 3 and summary["rewards_byzantine_wei"] == "0"
    assert int(summary["rewards_honest_wei"]) == 3 * SimConfig(**SMALL).reward_per_round
    assert summary["rewards_honest_share"] == 1.0


def test_batched_trainer_matches_train_local() -> None:
    task = get_task("digits")
    state = task.genesis_state(0)
    shards = [task.train_data.subset(range(i * 40, i * 40 + 30 + 7 * i)) for i in range(3)]
    batched = train_batched(task, state, shards, [11, 12, 13], epochs=2, batch_size=16, lr=0.05, momentum=0.9)
    for shard, seed, got in zip(shards, [11, 12, 13], batched):
        want = train_local(task, state, shard, epochs=2, batch_size=16, lr=0.05, momentum=0.9, seed=seed).state
        for k in want:
            torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5)


def test_bad_configs_are_rejected() -> None:
    with pytest.raises(SimError):
        SimConfig(peers=5, byzantine=1, attack="none")
    with pytest.raises(SimError):
        SimConfig(attack="teleport")
    with pytest.raises(SimError):
        SimConfig(peers=5, byzantine=5, attack="ipm")


def test_simulate_cli_no_ledger_writes_results(tmp_path) -> None:
    out = tmp_path / "sim"
    result = CliRunner().invoke(app, [
        "simulate", "--no-ledger", "--peers", "6", "--byzantine-fraction", "0.2", "--attack", "scaled",
        "--rule", "trimmed_mean", "--rounds", "2", "--local-epochs", "1", "--out", str(out),
    ])
    assert result.exit_code == 0, result.output
    doc = json.loads((out / "simulation.json").read_text())
    assert doc["mode"] == "no-ledger" and len(doc["rounds"]) == 2
    summary = doc["summary"]  # honest vs Byzantine, also in the printed summary
    paid = int(summary["rewards_honest_wei"]) + int(summary["rewards_byzantine_wei"])
    assert paid == sum(r["rewarded_honest_wei"] + r["rewarded_byzantine_wei"] for r in doc["rounds"]) > 0
    assert summary["excluded_honest"] + summary["excluded_byzantine"] == sum(len(r["excluded"]) for r in doc["rounds"])
    text = " ".join(result.output.split())
    assert "excluded: honest / Byzantine" in text and "rewards to Byzantine peers" in text
    assert (out / "accuracy.png").stat().st_size > 0 and (out / "phases.png").stat().st_size > 0


def test_simulate_cli_rejects_attackless_byzantine(tmp_path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--no-ledger", "--byzantine-fraction", "0.2", "--out", str(tmp_path)])
    assert result.exit_code != 0


def test_on_chain_run_finalizes_every_round(anvil, ipfs) -> None:
    from ledger_tools.chain import FederationLedger

    config = SimConfig(**{**SMALL, "peers": 4})
    transport = ChainTransport(anvil.rpc_url, ipfs.api_url)
    result = SimEngine(config, transport).run()
    assert [r.finalized for r in result.rounds] == [True, True]
    assert all(r.gas_used > 0 and r.votes >= 3 for r in result.rounds)
    ledger = FederationLedger(anvil.rpc_url, result.ledger["contract"])
    finals = ledger.finalizations()
    assert [f.round for f in finals] == [1, 2]
    assert finals[-1].aggregate_hash.hex() == result.final_model_hash
    # the chain's trajectory is the ledger-free one: same code, same bytes
    assert SimEngine(config).run().final_model_hash == result.final_model_hash


def test_bench_detail_measures_one_peer_path(anvil, ipfs) -> None:
    """`ChainTransport(detail=True)` (bench/overhead): per-peer seal/add/commit, the observer's concurrent
    collection from IPFS and from gossip copies, one time per vote; the extra measurement is kept out of the
    round's wall time and the trajectory is the ledger-free one."""
    config = SimConfig(**{**SMALL, "peers": 4, "rounds": 1})
    transport = ChainTransport(anvil.rpc_url, ipfs.api_url, detail=True)
    engine = SimEngine(config, transport)
    result = engine.run()
    rec = result.rounds[0]
    detail = transport.detail[1]
    assert rec.finalized and set(detail["per_peer"]) == {p.address for p in engine.peers}
    assert all(v["seal"] > 0 and v["ipfs_add"] > 0 and v["commit"] > 0 for v in detail["per_peer"].values())
    assert detail["fetched_blobs"] == 3 and detail["collect_ipfs"] > 0 and detail["collect_gossip"] > 0
    assert len(detail["vote_tx"]) == rec.votes and detail["publish_results"] > 0
    assert set(engine.peer_seconds[1]) == {p.address for p in engine.peers}
    assert 0 < transport.bench_only_seconds[1] < rec.wall_seconds + transport.bench_only_seconds[1]
    assert SimEngine(config).run().final_model_hash == result.final_model_hash
