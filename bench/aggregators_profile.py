"""Phase profile of one exact aggregation (issue 13): where the time of Krum, Multi-Krum, trimmed mean and median goes.

Each phase is the same internal call `consensus.aggregate` makes, run in the same order on the same data as
`bench.aggregators`' workload (n float32 updates of N(0, 0.01^2), scale 2**-20): decode the canonical blobs to
int32 rows, the exact pairwise distances (Gram) for the Krum family, the selection, the final exact average /
copy, encode, sha256. Wall (`perf_counter`, our chunk workers on every core) and CPU (`process_time`, all
threads) per phase, best of `--repeats`, and each phase's share of the summed wall. Two single-thread probes
split the Gram into its parts: converting int32 chunks to float64 blocks, and the BLAS product on a block that
is already converted (per 1M columns, CPU time, BLAS on one thread). CPU time is what to compare on a busy
machine; wall time there is noisy.

    python -m bench.aggregators_profile                  # n = 50, d = 1M, f = 5
    python -m bench.aggregators_profile --n 50 --d 1000000 --repeats 5
"""
from __future__ import annotations

import argparse
import gc
import importlib
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

import consensus
from consensus import ModelSpec, codec, intmath
from consensus.aggregators.base import RuleInput

# the packages re-export functions under these module names
agg_module = importlib.import_module("consensus.aggregate")
fedavg = importlib.import_module("consensus.aggregators.fedavg")
krum = importlib.import_module("consensus.aggregators.krum")
trimmed_mean = importlib.import_module("consensus.aggregators.trimmed_mean")


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, float, Any]:
    """(best wall s, CPU s of that run, result)."""
    best = (float("inf"), 0.0, None)
    for _ in range(repeats):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        wall, cpu = time.perf_counter() - w0, time.process_time() - c0
        if wall < best[0]:
            best = (wall, cpu, out)
    return best


def workload(n: int, d: int, seed: int = 0) -> tuple[ModelSpec, list[bytes]]:
    rng = np.random.default_rng(seed)
    spec = ModelSpec({"w": (d,)})
    return spec, [consensus.encode({"w": rng.standard_normal(d, dtype=np.float32) * np.float32(0.01)}, spec=spec)
                  for _ in range(n)]


def profile_rule(rule: str, blobs: list[bytes], spec: ModelSpec, f: int,
                 repeats: int) -> list[tuple[str, float, float]]:
    phases: list[tuple[str, float, float]] = []

    def phase(name: str, fn: Callable[[], Any]) -> Any:
        wall, cpu, out = timed(fn, repeats)
        phases.append((name, wall, cpu))
        return out

    decoded = phase("decode", lambda: agg_module._decode_all(blobs, spec, None))
    inp = RuleInput([item.values for item in decoded], [1] * len(blobs), f, None)
    if rule in ("krum", "multi_krum"):
        dist = phase("gram+distances", lambda: intmath.sq_distances(inp.rows, None))
        k = krum.neighbour_count(inp.n, f, "paper")
        ranking = phase("selection", lambda: sorted(
            range(inp.n), key=lambda i, s=krum.krum_scores(dist, list(range(inp.n)), k): (s[i], i)))
        if rule == "krum":
            values = phase("final copy", lambda: inp.rows[ranking[0]].copy())
        else:
            chosen = sorted(ranking[:inp.n - f])
            mean = getattr(intmath, "exact_mean", None)  # the uniform mean multi_krum uses (absent before issue 13)
            values = phase("final exact mean", lambda: fedavg.weighted_mean(
                [inp.rows[i] for i in chosen], [1] * len(chosen), None) if mean is None
                else mean([inp.rows[i] for i in chosen], None))
    else:
        trim = f if rule == "trimmed_mean" else (inp.n - 1) // 2
        values = phase("select+mean+scores", lambda: trimmed_mean.trimmed(inp, trim).values)
    blob = phase("encode", lambda: codec.encode_ints(spec, values))
    phase("sha256", lambda: codec.update_hash(blob))
    wall, cpu, _ = timed(lambda: consensus.aggregate(rule, blobs, f=f, spec=spec), repeats)
    phases.append(("whole aggregate()", wall, cpu))
    return phases


def gram_parts(rows: list[np.ndarray], columns: int = 8192, repeats: int = 3) -> dict[str, float]:
    """CPU ms per 1M columns, one thread: int32 -> float64 block conversion, and the syrk product alone."""
    n, d = len(rows), rows[0].size
    block = np.empty((n, columns))

    def convert() -> None:
        for start in range(0, d - columns + 1, columns):
            for i, row in enumerate(rows):
                block[i] = row[start:start + columns]

    def product() -> None:
        for _ in range(0, d - columns + 1, columns):
            block @ block.T  # noqa: B018 - timed for its cost

    scale = 1e3 * 1_000_000 / (d - d % columns)
    with threadpool_limits(limits=1, user_api="blas"):
        return {"convert": timed(convert, repeats)[1] * scale, "syrk product": timed(product, repeats)[1] * scale}


def blas_rates(n: int, columns: int = 8192, square: int = 1024, repeats: int = 3) -> dict[str, float]:
    """GFLOP/s on one thread: the Gram's product as it runs (an n x columns float64 block times its transpose,
    n*n*columns multiply-adds if BLAS computes the full product), and a large square dgemm, this core's practical
    float64 peak. Their ratio says how much a faster exact Gram could still gain from BLAS on this machine."""
    rng = np.random.default_rng(0)
    block, a = rng.standard_normal((n, columns)), rng.standard_normal((square, square))
    with threadpool_limits(limits=1, user_api="blas"):
        gram = timed(lambda: block @ block.T, repeats)[1]
        peak = timed(lambda: a @ a, repeats)[1]
    rates = {"gram product": 2 * n * n * columns / gram / 1e9, "square dgemm": 2 * square**3 / peak / 1e9}
    rates.update(int8_gram_rate(n, columns * 4, repeats))
    return rates


INT8_GRAM = "int8 gram (torch._int_mm)"


def int8_gram_rate(n: int, columns: int, repeats: int = 3) -> dict[str, float]:
    """GOP/s of an exact int8 x int8 -> int32 Gram block on one thread (`torch._int_mm`, VNNI where the CPU has
    it): the building block of a limb-split exact Gram (each int32 row as balanced base-256 int8 digits; two
    digits cover |q| < 2**15 with 3 products, three |q| < 2**23 with 6). Empty if this torch lacks it."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        x = torch.randint(-128, 128, (n, columns), dtype=torch.int8)
        xt = x.t().contiguous()
        if not torch.equal(torch._int_mm(x, xt).long(), x.long() @ xt.long()):
            return {}
        seconds = timed(lambda: torch._int_mm(x, xt), repeats)[1]
    except (RuntimeError, AttributeError):  # no CPU kernel for these shapes in this torch build
        return {}
    finally:
        torch.set_num_threads(threads)
    return {INT8_GRAM: 2 * n * n * columns / seconds / 1e9}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50)
    parser.add_argument("--d", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rules", nargs="*", default=["krum", "multi_krum", "trimmed_mean", "median"])
    args = parser.parse_args(argv)
    spec, blobs = workload(args.n, args.d)
    f = max(1, args.n // 10)
    print(f"n={args.n} d={args.d} f={f} load(1 min)={os.getloadavg()[0]:.2f}")
    for rule in args.rules:
        phases = profile_rule(rule, blobs, spec, f, args.repeats)
        total = sum(wall for name, wall, _ in phases if not name.startswith("whole"))
        print(f"\n{rule}")
        for name, wall, cpu in phases:
            share = "" if name.startswith("whole") else f"{100 * wall / total:5.1f} %"
            print(f"  {name:20s} wall {1e3 * wall:8.1f} ms  cpu {1e3 * cpu:8.1f} ms  {share}")
    rows = [item.values for item in agg_module._decode_all(blobs, spec, None)]
    parts = gram_parts(rows)
    print("\nGram parts, one thread, CPU ms per 1M columns: "
          + ", ".join(f"{k} {v:.1f}" for k, v in parts.items()))
    rates = blas_rates(args.n)
    print(f"BLAS float64, one thread, GFLOP/s: gram product (n={args.n}) {rates['gram product']:.1f}, "
          f"square dgemm {rates['square dgemm']:.1f}"
          + (f"; exact int8 gram, GOP/s: {rates[INT8_GRAM]:.1f}" if INT8_GRAM in rates else ""))
    print(f"load(1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
