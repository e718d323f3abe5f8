"""Rounds at real model sizes: wall time (split into phases, with and without the ledger) and one peer's peak RSS,
vs parameters (1M, 5M, 11M, 25M at 10 peers) and vs peers (5, 10, 20 at 11M).

Same definitions as `bench.overhead` (docs/overhead.md, "What is compared"): one peer's path through a round,
gated by the slowest peer,

    no-ledger round  = slowest peer's (train + encode) + update exchange + aggregate
    ledger round     = slowest peer's (train + encode + seal + persist + local CID) + [update exchange, each
                       update unsealed on arrival ‖ commit tx] + read commitments + aggregate (the adds running)
                       + local CIDs of the results + vote tx

with the ledger round measured as one peer's real wall time by `bench.critical_path`: the peer's IPFS adds run
in the background on a real `Publisher` and the others' updates are unsealed as they arrive, so that work
still competes for the cores. It is replayed on the real chain after a `ChainTransport(detail=True)`
simulator run (anvil + the local IPFS node), median of `--repeats`. The series sum of
`bench.overhead.round_model` over the same run (every term alone, as before the IPFS adds moved off the path)
is kept beside it as `deployment_series`. The exchange is measured with real `GossipNode` processes on
loopback: publish of the envelope to the blob verified at a receiver, which for blobs above one gossip chunk
is the bulk stream path (`peer.net.bulk`); shortest of the samples (the lower bound of an all-to-all
exchange, so a shorter baseline only makes the ledger's share larger). Peak RSS: `bench.scale_rss` (one peer
process: train, then collect + aggregate, its own high-water mark per phase).

    python -m bench.scale [--epochs 2] [--quick] [--only 11M@10,1M@10] [--repeats 3] [--compare-read]
                          [--settle 3] [--no-doc]
        → bench/results/scale.{json,png}, the "Scale" section of docs/overhead.md
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

from bench.overhead import TARGET_PCT, round_model

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
#: label -> (task, hidden width for the plain digits MLP or None); 1M is bench.overhead's model.
MODELS = {"1M": ("digits", 13333), "5M": ("digits-5m", None), "11M": ("digits-11m", None),
          "25M": ("digits-25m", None)}
GRID = [("11M", 10), ("1M", 10), ("5M", 10), ("25M", 10), ("11M", 5), ("11M", 20)]


def _ledger_run(model: str, n: int, epochs: int, anvil, node) -> dict:
    from simulation.chain_transport import ChainTransport
    from simulation.config import SimConfig
    from simulation.engine import SimEngine

    task, hidden = MODELS[model]
    cfg = SimConfig(task=task, peers=n, rounds=2, alpha=1.0, local_epochs=epochs, hidden=hidden,
                    rule="multi_krum", f=max(1, n // 5))
    transport = ChainTransport(anvil.rpc_url, node.api_url, detail=True)
    engine = SimEngine(cfg, transport)
    res = engine.run()
    rec = res.rounds[-1]
    return {"engine": engine, "transport": transport, "rec": rec, "detail": transport.detail[rec.round],
            "parameters": res.config["num_parameters"], "finalized": rec.finalized, "gas": rec.gas_used,
            "phase_seconds": rec.phase_seconds, "sim_wall_seconds": rec.wall_seconds}


def exchange_seconds(size: int, reps: int = 3) -> dict:
    """Envelope publish → blob verified at the receiver, two real gossip processes; bulk path above 512 KiB."""
    from bench.overhead_probes import _GossipProcess

    procs = [_GossipProcess(i, 2) for i in range(2)]
    try:
        for p in procs:
            p.read()
        addrs = [p.request("start")["multiaddr"] for p in procs]
        procs[1].request("connect", addrs=[addrs[0]], timeout=15.0)
        for p in procs:
            p.request("wait_peers", n=1, timeout=15.0)
        samples = []
        for _ in range(reps):
            h = os.urandom(32).hex()
            procs[1].proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "items": [{"update_hash": h}],
                                                  "timeout": 300.0}) + "\n")
            procs[1].proc.stdin.flush()
            item = procs[0].request("publish", round=1, blob_size=size, update_hash=h)
            samples.append(procs[1].read(timeout=320)["arrivals"][h]["blob"] - item["t_envelope"])
    finally:
        for p in procs:
            p.kill()
    return {"blob_bytes": size, "seconds": round(min(samples), 3), "samples": [round(s, 3) for s in samples],
            "MBps": round(size / min(samples) / 1e6, 1)}


def _sealed_size(parameters: int, n: int) -> int:
    """Canonical update (12-byte preamble + table + 4 bytes per parameter) plus the seal header and tag."""
    return 4 * parameters + 200 + 116 * n + 128


def measure(model: str, n: int, epochs: int, anvil, node, exchanges: dict, repeats: int = 3,
            compare: bool = False, settle: float = 0.0) -> dict:
    from bench.critical_path import replay
    from bench.scale_rss import measure as rss

    run = _ledger_run(model, n, epochs, anvil, node)
    size = _sealed_size(run["parameters"], n)
    key = f"{model}@{n}"
    if model not in exchanges:
        exchanges[model] = exchange_seconds(size)
    exchange = exchanges[model]["seconds"]
    series = round_model(run["engine"], run["rec"], run["detail"], exchange)
    load_before = round(os.getloadavg()[0], 2)
    critical = replay(run["engine"], run["transport"], exchange, repeats=repeats, compare=compare, settle=settle)
    critical["load_avg"] = [load_before, round(os.getloadavg()[0], 2)]
    del run["transport"], run["engine"]
    memory = rss(MODELS[model][0] if MODELS[model][1] is None else f"digits:h{MODELS[model][1]}", n, epochs)
    return {"key": key, "model": model, "peers": n, "epochs": epochs, "parameters": run["parameters"],
            "sealed_bytes": size, "exchange": exchanges[model], "deployment_series": series, "critical": critical,
            "simulator_phase_seconds": run["phase_seconds"], "finalized": run["finalized"], "gas": run["gas"],
            "rss": memory, "load_avg": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--only", help="comma list of MODEL@PEERS (default: the full grid)")
    ap.add_argument("--quick", action="store_true", help="11M@10 and 1M@10 only")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--repeats", type=int, default=3, help="critical-path replays per row (median reported)")
    ap.add_argument("--compare-read", action="store_true",
                    help="pair every replay with one reading the commitments after the commit (the path before "
                         "peer.loop.commitments_ahead), interleaved")
    ap.add_argument("--settle", type=float, default=0.0,
                    help="before every replay: os.sync() and this many seconds idle (the previous replay's writes "
                         "written back, as between rounds further apart than the kernel's writeback delay); "
                         "default 0: back to back")
    args = ap.parse_args(argv)

    import torch

    from bench.scale_report import plot, write_section
    from devnet.anvil import start_anvil
    from devnet.ipfs import start_ipfs

    torch.set_num_threads(1)
    grid = GRID[:2] if args.quick else GRID
    if args.only:
        grid = [(k.split("@")[0], int(k.split("@")[1])) for k in args.only.split(",")]
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    RESULTS.mkdir(parents=True, exist_ok=True)
    out_path = RESULTS / "scale.json"
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    rows = {r["key"]: r for r in previous.get("rows", [])}
    exchanges: dict = {}
    anvil, node = start_anvil(), start_ipfs(offline=True)
    try:
        for model, n in grid:
            row = measure(model, n, args.epochs, anvil, node, exchanges, args.repeats, args.compare_read, args.settle)
            row["before"] = _before(rows.get(row["key"]))
            row["earlier_replays"] = _earlier(rows.get(row["key"]))
            row["run"] = {"command": "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:]),
                          "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "commit": _commit()}
            rows[row["key"]] = row
            d, m, s = row["critical"], row["rss"], row["deployment_series"]
            print(f"{row['key']:>8} ({row['parameters']:,} params): no-ledger {d['round_no_ledger']:.2f} s, ledger "
                  f"{d['round_ledger']:.2f} s ({d['ledger_pct']:+.1f} %, runs {d['repeat_pcts']}; series model "
                  f"{s['ledger_pct']:+.1f} %), "
                  f"exchange {row['exchange']['seconds']} s,"
                  f" peak RSS collect+aggregate {m['peak_collect_aggregate'] / 2**30:.2f} GiB, train "
                  f"{m['peak_train'] / 2**30:.2f} GiB", flush=True)
            if "read_after_commit" in d:
                b = d["read_after_commit"]
                print(f"{'':>8} paired: commitments read after the commit {b['ledger_pct']:+.1f} % (runs "
                      f"{b['repeat_pcts']}), ledger path median {b['ledger_path_median_seconds']:.3f} s vs read ahead "
                      f"{d['ledger_path_median_seconds']:.3f} s", flush=True)
            doc = {"meta": _meta(argv, started, load_start, args.epochs), "rows": list(rows.values())}
            out_path.write_text(json.dumps(doc, indent=1))  # after every row: a long run keeps what it measured
    finally:
        node.stop()
        anvil.stop()
    plot(doc, RESULTS / "scale.png")
    if not args.no_doc:
        write_section(doc)
    return 0


def _before(old: dict | None) -> dict | None:
    """The row this one replaces, as it was measured before the critical-path replay (kept for the comparison)."""
    if old is None:
        return None
    if "before" in old and old["before"] is not None:
        return old["before"]
    d = old.get("deployment_series") or old.get("deployment")
    return None if d is None else {"ledger_pct": d["ledger_pct"], "round_no_ledger": d["round_no_ledger"],
                                   "round_ledger": d["round_ledger_gossip"], "ledger_added": d["ledger_added"],
                                   "load_avg": old.get("load_avg"), "definition": "series sum (bench.overhead)"}


def _earlier(old: dict | None) -> list[dict]:
    """Summaries of the critical-path replays of the runs this row replaces (a loaded machine spreads them)."""
    if old is None or old.get("critical") is None:
        return []
    c = old["critical"]
    return old.get("earlier_replays", []) + [{"ledger_pct": c["ledger_pct"], "repeat_pcts": c["repeat_pcts"],
                                              "load_avg": c["load_avg"], "exchange": old["exchange"]["seconds"],
                                              "ledger_added": c["ledger_added"],
                                              "round_no_ledger": c["round_no_ledger"], "terms": c["terms"],
                                              "settle": c.get("settle_seconds", 0.0), "run": old.get("run")}]


def _commit() -> str | None:
    """The code's commit (a row's figures belong to the code that measured them)."""
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _meta(argv, started: float, load_start: float, epochs: int) -> dict:
    return {"command": "python -m bench.scale " + " ".join(argv if argv is not None else sys.argv[1:]),
            "epochs": epochs, "wall_seconds": round(time.perf_counter() - started, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "load_avg_start": round(load_start, 2),
            "load_avg_end": round(os.getloadavg()[0], 2), "target_pct": TARGET_PCT,
            "median_load": round(statistics.median([load_start, os.getloadavg()[0]]), 2)}


if __name__ == "__main__":
    sys.exit(main())
