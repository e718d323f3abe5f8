"""Ledger overhead: what the ledger (sealing, IPFS, on-chain commit + vote) adds to one federated round.

Same simulator, same seed, same model trajectory with and without the ledger (`LocalTransport` vs
`ChainTransport` on a fresh anvil + js-ipfs node). Model: the digits MLP widened to 64→13333→10 (999,985
parameters, a 4 MB canonical update). Every run does 2 rounds and reports round 2 (round 1 pays warm-ups).

**The comparison.** A federation without a ledger still has to ship every peer's update to every other peer;
ours does that by libp2p gossip, and the real peer takes its blobs from gossip first. So the baseline round is

    no-ledger round  = slowest peer's (train + encode) + gossip exchange + aggregate

and the ledger round adds only what the ledger does, one peer's own share (peers run on their own machines):

    ledger round     = slowest peer's (train + encode + seal + IPFS add + commit tx) + gossip exchange
                       + read commitments + unseal the other n-1 blobs (FETCH_THREADS threads) + aggregate
                       + IPFS add of the new model and reward tree + one vote tx

That series sum is kept for comparison; each ledger row also carries `critical`, the round as the peer now runs
it (IPFS adds in the background, updates unsealed on arrival, commit tx during the exchange), replayed as real
wall time with that background work running (`bench.critical_path`, see docs/overhead.md's scale section).

Every term is measured: the peers' own steps one at a time inside the ledger run (`ChainTransport(detail=True)`),
so both rounds come from the same run and load drift between runs cannot fake a difference; the gossip exchange
with real `peer.net.gossip.GossipNode` processes on loopback (`gossip_exchange`: one 4 MB sealed blob, sender to
receiver, the lower bound of any all-to-all exchange — a shorter baseline makes the ledger's share larger,
never smaller). The ledger-only additions are counted in series, without crediting the overlap a real peer gets
(the commit tx runs while gossip is still delivering). Also reported: the same round with every blob taken from
IPFS (gossip down), fetched concurrently — the ledger's own fallback path.

Plus: IPFS add/cat throughput per option set, the simulator's own phase split (all peers in one process),
a workload sweep (more local epochs at 10 peers) and the scale curve (4,810-parameter model, up to 100 peers).

    python -m bench.overhead [--epochs 2] [--workloads 10,30] [--quick]
        → bench/results/overhead.{json,png}, docs/overhead.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
HIDDEN_1M = 13333
TARGET_PCT = 20.0


# ----------------------------------------------------------------------------------------------- runs


def _run(n: int, *, hidden: int | None, ledger, rounds: int, epochs: int):
    from simulation.config import SimConfig
    from simulation.engine import SimEngine

    cfg = SimConfig(task="digits", peers=n, rounds=rounds, alpha=1.0, local_epochs=epochs, hidden=hidden,
                    rule="multi_krum", f=max(1, n // 5))
    engine = SimEngine(cfg, ledger)
    return engine, engine.run()


def round_model(engine, rec, detail: dict, exchange: float) -> dict:
    """Deployment view of one measured ledger round (see the module docstring), all terms in seconds."""
    learn = engine.peer_seconds[rec.round]
    per_peer = detail["per_peer"]
    own = {a: per_peer[a]["seal"] + per_peer[a]["ipfs_add"] + per_peer[a]["commit"] for a in per_peer}
    slowest_learn = max(learn.values())
    commit_ready = max(learn[a] + own[a] for a in per_peer)
    one_vote = statistics.mean(detail["vote_tx"]) if detail["vote_tx"] else 0.0
    aggregate = rec.phase_seconds["aggregate"]
    after_commit = detail["read_commitments"] + aggregate + detail["publish_results"] + one_vote
    no_ledger = slowest_learn + exchange + aggregate
    with_gossip = commit_ready + exchange + detail["collect_gossip"] + after_commit
    ipfs_only = commit_ready + detail["collect_ipfs"] + after_commit
    n_own = len(per_peer)
    return {
        "slowest_peer_learning": round(slowest_learn, 4),
        "mean_peer_learning": round(statistics.mean(learn.values()), 4),
        "gossip_exchange": round(exchange, 4),
        "aggregate": round(aggregate, 4),
        "ledger_terms": {
            "seal_own (mean per peer)": round(sum(p["seal"] for p in per_peer.values()) / n_own, 4),
            "ipfs_add_own (mean per peer)": round(sum(p["ipfs_add"] for p in per_peer.values()) / n_own, 4),
            "commit_tx (mean per peer)": round(sum(p["commit"] for p in per_peer.values()) / n_own, 4),
            "slowest peer's extra before commit": round(commit_ready - slowest_learn, 4),
            "read_commitments": round(detail["read_commitments"], 4),
            "unseal others (concurrent)": round(detail["collect_gossip"], 4),
            "ipfs_add model + reward tree": round(detail["publish_results"], 4),
            "vote_tx": round(one_vote, 4),
        },
        "collect_ipfs_concurrent": round(detail["collect_ipfs"], 4),
        "round_no_ledger": round(no_ledger, 4),
        "round_ledger_gossip": round(with_gossip, 4),
        "round_ledger_ipfs_only": round(ipfs_only, 4),
        "ledger_added": round(with_gossip - no_ledger, 4),
        "ledger_pct": round(100 * (with_gossip - no_ledger) / no_ledger, 1),
        "ipfs_only_pct": round(100 * (ipfs_only - no_ledger) / no_ledger, 1),
        # the unfair comparison, for reference: as if updates reached every peer for free
        "ledger_pct_vs_learning_only": round(100 * (with_gossip - no_ledger) / (slowest_learn + aggregate), 1),
    }


def _ledger_row(anvil, node, n: int, epochs: int, exchange: float, *, hidden: int | None = HIDDEN_1M,
                critical: bool = True) -> dict:
    from simulation.chain_transport import ChainTransport

    transport = ChainTransport(anvil.rpc_url, node.api_url, detail=True)
    engine, res = _run(n, hidden=hidden, ledger=transport, rounds=2, epochs=epochs)
    rec = res.rounds[-1]
    detail = transport.detail[rec.round]
    model = round_model(engine, rec, detail, exchange)
    row = {"peers": n, "epochs": epochs, "mode": "ledger", "parameters": res.config["num_parameters"],
            "phase_seconds": rec.phase_seconds, "wall_seconds": rec.wall_seconds, "gas": rec.gas_used,
            "votes": rec.votes, "finalized": rec.finalized, "accuracy": rec.accuracy, "deployment": model,
            "samples_per_peer": round(statistics.mean(p["samples"] for p in res.peers)),
            "detail": {k: v for k, v in detail.items() if k != "per_peer"}}
    if critical:  # the same round as the peer runs it now: adds in the background, unsealing on arrival
        from bench.critical_path import replay

        row["critical"] = replay(engine, transport, exchange, repeats=1)
    return row


def _repeated(anvil, node, n: int, epochs: int, exchange: float, repeats: int) -> dict:
    """The median run (by ledger share) of `repeats` ledger runs; all shares kept in `repeat_pcts`."""
    runs = sorted((_ledger_row(anvil, node, n, epochs, exchange) for _ in range(max(1, repeats))),
                  key=lambda r: r["deployment"]["ledger_pct"])
    median = runs[len(runs) // 2]
    median["repeat_pcts"] = [r["deployment"]["ledger_pct"] for r in runs]
    return median


def _baseline_row(n: int, epochs: int) -> dict:
    engine, res = _run(n, hidden=HIDDEN_1M, ledger=None, rounds=2, epochs=epochs)
    rec = res.rounds[-1]
    learn = engine.peer_seconds[rec.round]
    return {"peers": n, "epochs": epochs, "mode": "no-ledger", "parameters": res.config["num_parameters"],
            "phase_seconds": rec.phase_seconds, "wall_seconds": rec.wall_seconds, "gas": 0, "votes": rec.votes,
            "finalized": rec.finalized, "accuracy": rec.accuracy,
            "slowest_peer_learning": round(max(learn.values()), 4)}


# ----------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2, help="local epochs per round in the 5/10/20-peer grid")
    ap.add_argument("--workloads", default="10,30", help="more local epochs to measure at 10 peers (comma list)")
    ap.add_argument("--quick", action="store_true", help="5 and 10 peers, scale curve to 20, no workload sweep")
    ap.add_argument("--repeats", type=int, default=3, help="runs per 10-peer configuration (the median is reported)")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from bench.overhead_probes import gossip_exchange, ipfs_throughput
    from bench.overhead_report import plot, write_doc

    torch.set_num_threads(1)
    from devnet.anvil import start_anvil
    from devnet.ipfs import start_ipfs

    sizes = (5, 10) if args.quick else (5, 10, 20)
    scale = (5, 10, 20) if args.quick else (5, 10, 20, 50, 100)
    workloads = [] if args.quick else [int(x) for x in args.workloads.split(",") if x.strip()]
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    print("gossip exchange (real libp2p processes) ...", flush=True)
    gossip = gossip_exchange()
    exchange = gossip["one_blob_seconds"]
    print(json.dumps(gossip), flush=True)
    anvil, node = start_anvil(), start_ipfs(offline=True)
    rows, sweep, curve = [], [], []
    try:
        ipfs = ipfs_throughput(node.api_url)
        print(json.dumps(ipfs), flush=True)
        for n in sizes:
            rows.append(_baseline_row(n, args.epochs))
            rows.append(_repeated(anvil, node, n, args.epochs, exchange, args.repeats if n == 10 else 1))
            d = rows[-1]["deployment"]
            print(
                f"n={n:>3} epochs={args.epochs}: no-ledger {d['round_no_ledger']:.2f} s, ledger "
                f"{d['round_ledger_gossip']:.2f} s (+{d['ledger_pct']} %), "
                f"ipfs-only {d['round_ledger_ipfs_only']:.2f} s",
                flush=True,
            )
        for epochs in workloads:
            sweep.append(_repeated(anvil, node, 10, epochs, exchange, args.repeats))
            d = sweep[-1]["deployment"]
            print(f"n= 10 epochs={epochs}: no-ledger {d['round_no_ledger']:.2f} s, ledger "
                  f"{d['round_ledger_gossip']:.2f} s (+{d['ledger_pct']} %)", flush=True)
        for n in scale:
            row = _ledger_row(anvil, node, n, 1, gossip["small_blob_seconds"], hidden=None, critical=False)
            curve.append({"peers": n, "wall_seconds": row["wall_seconds"], "gas": row["gas"], "votes": row["votes"],
                          "gas_per_peer": row["gas"] // n, "finalized": row["finalized"],
                          "round_ledger_gossip": row["deployment"]["round_ledger_gossip"],
                          "round_ledger_ipfs_only": row["deployment"]["round_ledger_ipfs_only"]})
            print(f"scale n={n:>3}: wall {row['wall_seconds']:6.2f} s gas {row['gas']:,}", flush=True)
    finally:
        node.stop()
        anvil.stop()
    meta = {"command": "python -m bench.overhead " + " ".join(argv if argv is not None else sys.argv[1:]),
            "quick": args.quick, "epochs": args.epochs, "wall_seconds": round(time.perf_counter() - started, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "load_avg_start": round(load_start, 2), "load_avg_end": round(os.getloadavg()[0], 2)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "overhead_quick" if args.quick else "overhead"
    doc = {"meta": meta, "gossip": gossip, "ipfs": ipfs, "rows": rows, "workloads": sweep, "scale": curve}
    (RESULTS / f"{stem}.json").write_text(json.dumps(doc, indent=1))
    plot(doc, RESULTS / f"{stem}.png")
    if not args.no_doc and not args.quick:
        write_doc(doc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
