"""Aggregator bench: exact consensus rules vs Flower's and ByzFL-style float ones, same run, same machine.

Grid: n in {10, 50, 100} peers x d in {100k, 1M} float32 coordinates, f = n // 10 (Bulyan: n >= 4f+3).
For each rule: our wall time (from canonical bytes to canonical bytes, decode and encode included),
Flower's (`flwr.server.strategy.aggregate`, from float32 arrays), ByzFL-style torch code's
(`bench.byzfl_style`, from float32 arrays), the ratios, our peak extra memory (tracemalloc, which sees numpy
buffers) relative to the stacked int32 input, and the sha256 of our aggregate with 1 and 2 threads (BLAS,
torch and our chunk workers). The three implementations are timed round-robin, three times each (best
reported, all kept in the JSON). With --load the timed runs of every cell share the machine with one competing CPU-bound
process (`bench.load`: a numpy matmul loop on all cores), started before and stopped after them.

    python -m bench.aggregators            # full grid, quiet -> bench/results/aggregators.json
    python -m bench.aggregators --load     # full grid, loaded -> bench/results/aggregators_load.json
    python -m bench.aggregators --quick    # n in {10, 50}, d = 100k
    python -m bench.aggregators --report   # markdown: quiet and loaded side by side, from the two JSONs
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import time
import tracemalloc
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.server.strategy import aggregate as fl

import consensus
from bench import byzfl_style
from bench.load import competing_load
from consensus import ModelSpec

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "aggregators.json"
RESULTS_LOAD = ROOT / "bench" / "results" / "aggregators_load.json"
RULES = ("fedavg", "krum", "multi_krum", "trimmed_mean", "median", "bulyan", "nnm+trimmed_mean")
FLOWER_BULYAN_MAX = 10 * 100_000  # Flower's Bulyan runs theta full Krums; only timed on the smallest grid
BYZFL_NNM_MAX = 50 * 100_000  # the ByzFL-style NNM gathers n-f rows per update; beyond this it runs for minutes


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


def interleaved_times(fns: dict[str, Callable[[], Any] | None], repeats: int) -> dict[str, list[float] | None]:
    """Wall times of each implementation, run round-robin so that all of them sample the same load."""
    times: dict[str, list[float] | None] = {name: None if fn is None else [] for name, fn in fns.items()}
    for _ in range(repeats):
        for name, fn in fns.items():
            if fn is None:
                continue
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(round(time.perf_counter() - start, 4))
    return times


def ratio(theirs: list[float] | None, ours: list[float]) -> float | None:
    return None if theirs is None else round(min(theirs) / min(ours), 2)


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


def run_cell(n: int, d: int, load: bool, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    spec = ModelSpec({"w": (d,)})
    floats = [(rng.standard_normal(d, dtype=np.float32) * np.float32(0.01)) for _ in range(n)]
    blobs = [consensus.encode({"w": x}, spec=spec) for x in floats]
    results = [([x], 1) for x in floats]
    f = max(1, n // 10)
    stacked = n * d * 4
    repeats = 3
    timed: dict[str, dict[str, Any]] = {}
    load_before = os.getloadavg()[0]
    with competing_load() if load else nullcontext():
        for rule in RULES:
            byz = byzfl_style.RULES.get(rule)
            if rule.startswith("nnm+") and n * d > BYZFL_NNM_MAX:
                byz = None
            timed[rule] = interleaved_times({
                "ours": lambda rule=rule: consensus.aggregate(rule, blobs, f=f, spec=spec),
                "flower": flower_call(rule, results, n, f),
                "byzfl": None if byz is None else lambda byz=byz: byz(floats, f)}, repeats)
    load_after = os.getloadavg()[0]
    rows = []
    for rule in RULES:
        t = timed[rule]
        peak = peak_extra(lambda rule=rule: consensus.aggregate(rule, blobs, f=f, spec=spec))
        h1 = hash_with_threads(rule, blobs, f, 1)
        h2 = hash_with_threads(rule, blobs, f, 2)
        row = {"n": n, "d": d, "f": f, "rule": rule, "load": load,
               "ours_s": min(t["ours"]), "flower_s": None if t["flower"] is None else min(t["flower"]),
               "byzfl_s": None if t["byzfl"] is None else min(t["byzfl"]),
               "speedup": ratio(t["flower"], t["ours"]), "speedup_byzfl": ratio(t["byzfl"], t["ours"]),
               "times": t, "loadavg_1min": [round(load_before, 2), round(load_after, 2)],
               "peak_extra_bytes": peak, "stacked_input_bytes": stacked,
               "peak_over_stacked": round(peak / stacked, 3),
               "hash_1_thread": h1, "hash_2_threads": h2, "same_hash": h1 == h2}
        rows.append(row)
        print(f"n={n:4d} d={d:8d} {rule:18s} ours {row['ours_s']:8.4f}s  flower {row['flower_s']}s "
              f"x{row['speedup']}  byzfl {row['byzfl_s']}s x{row['speedup_byzfl']}  "
              f"mem {row['peak_over_stacked']}x  same_hash={row['same_hash']}", flush=True)
    return rows


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _x(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}×"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| n | d | f | rule | ours (s) | Flower (s) | Flower / ours | ByzFL-style (s) | ByzFL-style / ours | "
             "peak extra mem / stacked int32 | hash 1 thr = 2 thr |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['n']} | {r['d']:,} | {r['f']} | {r['rule']} | {r['ours_s']:.3f} | {_s(r['flower_s'])} | "
                     f"{_x(r['speedup'])} | {_s(r.get('byzfl_s'))} | {_x(r.get('speedup_byzfl'))} | "
                     f"{r['peak_over_stacked']:.2f}× | {'yes' if r['same_hash'] else '**NO**'} |")
    return "\n".join(lines)


def side_by_side(quiet: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> str:
    """Quiet and loaded runs of the same grid in one table; the last column compares their hashes."""
    by_key = {(r["n"], r["d"], r["rule"]): r for r in loaded}
    lines = ["| n | d | rule | quiet: ours (s) | Flower / ours | ByzFL-style / ours | loaded: ours (s) | "
             "Flower (s) | Flower / ours | ByzFL-style (s) | ByzFL-style / ours | same hash |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for q in quiet:
        ld = by_key.get((q["n"], q["d"], q["rule"]))
        if ld is None:
            continue
        same = q["hash_1_thread"] == q["hash_2_threads"] == ld["hash_1_thread"] == ld["hash_2_threads"]
        lines.append(f"| {q['n']} | {q['d']:,} | {q['rule']} | {q['ours_s']:.3f} | {_x(q['speedup'])} | "
                     f"{_x(q.get('speedup_byzfl'))} | {ld['ours_s']:.3f} | {_s(ld['flower_s'])} | "
                     f"{_x(ld['speedup'])} | {_s(ld['byzfl_s'])} | {_x(ld['speedup_byzfl'])} | "
                     f"{'yes' if same else '**NO**'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="n in {10, 50}, d = 100k only")
    parser.add_argument("--load", action="store_true", help="one competing CPU-bound process during timed runs")
    parser.add_argument("--report", action="store_true", help="print the quiet/loaded table from the JSONs")
    parser.add_argument("--cell", nargs=2, type=int, action="append", metavar=("N", "D"),
                        help="run only this (n, d) cell (repeatable); results go to --out or the default file")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.report:
        quiet, loaded = (json.loads(p.read_text())["rows"] for p in (RESULTS, RESULTS_LOAD))
        print(side_by_side(quiet, loaded))
        return
    out = args.out or (RESULTS_LOAD if args.load else RESULTS)
    grid = [(n, d) for d in ((100_000,) if args.quick else (100_000, 1_000_000))
            for n in ((10, 50) if args.quick else (10, 50, 100))]
    if args.cell:
        grid = [tuple(cell) for cell in args.cell]
    command = "python -m bench.aggregators" + (" --quick" if args.quick else "") + (" --load" if args.load else "")
    command += "".join(f" --cell {n} {d}" for n, d in args.cell or ())
    report = {"machine": {"platform": platform.platform(), "processor": platform.processor(),
                          "cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__,
                          "torch": torch.__version__, "torch_threads": torch.get_num_threads()},
              "quick": args.quick, "load": args.load, "command": command, "complete": False, "rows": []}
    out.parent.mkdir(parents=True, exist_ok=True)
    for n, d in grid:  # written after every cell, so an interrupted run keeps what it measured
        report["rows"] += run_cell(n, d, args.load)
        report["complete"] = len(report["rows"]) == len(grid) * len(RULES)
        out.write_text(json.dumps(report, indent=1) + "\n")
    rows = report["rows"]
    print(markdown_table(rows))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
