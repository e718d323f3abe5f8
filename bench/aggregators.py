"""Aggregator bench: exact consensus rules vs Flower's float ones, same run, same machine.

Grid: n in {10, 50, 100} peers x d in {100k, 1M} float32 coordinates, f = n // 10 (Bulyan: n >= 4f+3).
For each rule: our wall time (from canonical bytes to canonical bytes, decode and encode included),
Flower's (`flwr.server.strategy.aggregate`, from float32 arrays), their ratio, our peak extra memory
(tracemalloc, which sees numpy buffers) relative to the stacked int32 input, and the sha256 of our
aggregate with 1 and 2 threads (BLAS, torch and our chunk workers).

    python -m bench.aggregators            # full grid -> bench/results/aggregators.json
    python -m bench.aggregators --quick    # n in {10, 50}, d = 100k
"""
from __future__ import annotations

import argparse
import gc
import json
import platform
import time
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from flwr.server.strategy import aggregate as fl

import consensus
from consensus import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "aggregators.json"
RULES = ("fedavg", "krum", "multi_krum", "trimmed_mean", "median", "bulyan", "nnm+trimmed_mean")
FLOWER_BULYAN_MAX = 10 * 100_000  # Flower's Bulyan runs theta full Krums; only timed on the smallest grid


def flower_call(rule: str, results: list, n: int, f: int) -> Callable[[], Any] | None:
    if rule == "fedavg":
        return lambda: fl.aggregate(results)
    if rule == "krum":
        return lambda: fl.aggregate_krum(results, num_malicious=f, to_keep=0)
    if rule == "multi_krum":
        return lambda: fl.aggregate_krum(results, num_malicious=f, to_keep=n - f)
    if rule == "trimmed_mean":
        return lambda: fl.aggregate_trimmed_avg(results, proportiontocut=f / n)
    if rule == "median":
        return lambda: fl.aggregate_median(results)
    if rule == "bulyan" and n * len(results[0][0][0]) <= FLOWER_BULYAN_MAX:
        return lambda: fl.aggregate_bulyan(list(results), num_malicious=f, aggregation_rule=fl.aggregate_krum,
                                           to_keep=0)
    return None


def best_time(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def peak_extra(fn: Callable[[], Any]) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def hash_with_threads(rule: str, blobs: list[bytes], f: int, threads: int) -> str:
    from threadpoolctl import threadpool_limits

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(limits=threads):
            return consensus.update_hash(consensus.aggregate(rule, blobs, f=f, workers=threads).aggregate).hex()
    finally:
        torch.set_num_threads(old)


def run_cell(n: int, d: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    spec = ModelSpec({"w": (d,)})
    floats = [(rng.standard_normal(d, dtype=np.float32) * np.float32(0.01)) for _ in range(n)]
    blobs = [consensus.encode({"w": x}, spec=spec) for x in floats]
    results = [([x], 1) for x in floats]
    f = max(1, n // 10)
    stacked = n * d * 4
    repeats = 3 if n * d <= 10 * 1_000_000 else 2
    rows = []
    for rule in RULES:
        ours = best_time(lambda: consensus.aggregate(rule, blobs, f=f, spec=spec), repeats)
        call = flower_call(rule, results, n, f)
        theirs = best_time(call, 1) if call is not None else None
        peak = peak_extra(lambda: consensus.aggregate(rule, blobs, f=f, spec=spec))
        h1 = hash_with_threads(rule, blobs, f, 1)
        h2 = hash_with_threads(rule, blobs, f, 2)
        row = {"n": n, "d": d, "f": f, "rule": rule, "ours_s": round(ours, 4),
               "flower_s": None if theirs is None else round(theirs, 4),
               "speedup": None if theirs is None else round(theirs / ours, 2),
               "peak_extra_bytes": peak, "stacked_input_bytes": stacked,
               "peak_over_stacked": round(peak / stacked, 3),
               "hash_1_thread": h1, "hash_2_threads": h2, "same_hash": h1 == h2}
        rows.append(row)
        print(f"n={n:4d} d={d:8d} {rule:18s} ours {ours:8.4f}s  flower "
              f"{'-' if theirs is None else f'{theirs:8.4f}s'}  x{row['speedup']}  "
              f"mem {row['peak_over_stacked']}x  same_hash={row['same_hash']}", flush=True)
    return rows


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| n | d | f | rule | ours (s) | Flower (s) | Flower / ours | peak extra mem / stacked int32 | "
             "hash 1 thr = 2 thr |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        flower = "–" if r["flower_s"] is None else f"{r['flower_s']:.3f}"
        ratio = "–" if r["speedup"] is None else f"{r['speedup']:.1f}×"
        lines.append(f"| {r['n']} | {r['d']:,} | {r['f']} | {r['rule']} | {r['ours_s']:.3f} | {flower} | {ratio} | "
                     f"{r['peak_over_stacked']:.2f}× | {'yes' if r['same_hash'] else '**NO**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n in {10, 50}, d = 100k only")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    grid = [(n, d) for d in ((100_000,) if args.quick else (100_000, 1_000_000))
            for n in ((10, 50) if args.quick else (10, 50, 100))]
    rows = [row for n, d in grid for row in run_cell(n, d)]
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
                          "torch_threads": torch.get_num_threads()},
              "quick": args.quick, "command": "python -m bench.aggregators" + (" --quick" if args.quick else ""),
              "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1) + "\n")
    print(markdown_table(rows))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
