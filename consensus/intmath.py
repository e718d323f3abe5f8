"""Exact integer building blocks shared by the aggregation rules.

Everything here returns the same integers on every machine: integer numpy arithmetic is exact, and the
only floating-point step (the Gram matrix behind pairwise distances, and the 0/1 mixing product of NNM)
runs on integer-valued float64 operands whose partial sums are proven to stay below 2**53, so every
partial sum is an exactly representable integer whatever the summation order, BLAS or thread count.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np

T = TypeVar("T")
CHUNK = 1 << 15  # at most this many columns per block (the Gram bound below relies on it)
BLOCK_ELEMENTS = 1 << 19  # and about this many values per block, so temporaries stay small for any n
_EXACT = 1 << 53


def round_div(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """numerator / denominator rounded half to even, exactly, for int64 arrays and a positive int."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    num = np.asarray(numerator, dtype=np.int64)
    if denominator == 1:
        return num.copy()
    if num.size and max(-int(num.min()), int(num.max())) < 2**52 and denominator < 2**52:
        # Fast path. |num| < 2**52 is exact in float64 and so is the correctly rounded quotient's error
        # bound (< 1/2 ulp); rint() then gives the half-to-even rounding unless the true quotient lies within
        # that error of a half-integer. The remainder r = num - q*den is computed exactly (integers below
        # 2**53), and q is correct iff 2|r| <= den (an exact tie num/den = k + 1/2 is itself representable,
        # so rint() breaks it to even). Anything else falls back to integer division, which numpy does
        # several times slower.
        numf = num.astype(np.float64)
        quotient_f = np.rint(numf / denominator)
        numf -= quotient_f * denominator
        np.abs(numf, out=numf)
        if not (numf * 2 > denominator).any():
            return quotient_f.astype(np.int64)
    quotient, remainder = np.divmod(num, denominator)  # floor division: 0 <= remainder < denominator
    twice = 2 * remainder
    quotient += (twice > denominator) | ((twice == denominator) & ((quotient & 1) == 1))
    return quotient


def chunk_for(n: int) -> int:
    return max(256, min(CHUNK, BLOCK_ELEMENTS // max(n, 1)))


def chunk_ranges(size: int, chunk: int = CHUNK) -> list[tuple[int, int]]:
    return [(start, min(start + chunk, size)) for start in range(0, size, chunk)]


def default_workers() -> int:
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def map_chunks(fn: Callable[[int, int], T], size: int, workers: int | None, chunk: int = CHUNK) -> list[T]:
    """fn over column chunks, results in chunk order. Threads never change a result: chunks are independent."""
    ranges = chunk_ranges(size, chunk)
    workers = default_workers() if workers is None else workers
    if workers <= 1 or len(ranges) <= 1:
        return [fn(start, stop) for start, stop in ranges]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda r: fn(*r), ranges))


def gather(rows: Sequence[np.ndarray], start: int, stop: int, dtype: type = np.int32) -> np.ndarray:
    """Coordinates start:stop of every row as an (n, stop-start) block."""
    block = np.empty((len(rows), stop - start), dtype=dtype)
    for i, row in enumerate(rows):
        block[i] = row[start:stop]
    return block


def gather_t(rows: Sequence[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Coordinates start:stop as a (stop-start, n) int32 block: one contiguous row per coordinate."""
    return np.ascontiguousarray(gather(rows, start, stop).T)


def max_abs(rows: Sequence[np.ndarray]) -> int:
    return max((max(abs(int(r.min())), abs(int(r.max()))) for r in rows if r.size), default=0)


def sq_distances(rows: Sequence[np.ndarray]) -> list[list[int]]:
    """Exact pairwise squared Euclidean distances of int32 rows, as Python ints.

    Bound: if every |q| <= B then each product term |q_a*q_b| <= B**2 and the partial sums of one chunk of
    c coordinates stay <= c*B**2. With B <= 2**19 and c = 2**15 that is <= 2**53 (one float64 product per
    chunk). Larger magnitudes are split into limbs q = hi*2**16 + lo with 0 <= lo < 2**16, |hi| <= 2**15,
    so every limb product is < 2**32 and a chunk sums to < 2**15 * 2**32 = 2**47. Chunk Gram matrices are
    exact integers; they are accumulated in int64 (bound d*B**2 < 2**62 checked) or Python ints.
    """
    n = len(rows)
    d = rows[0].size if n else 0
    bound = max_abs(rows)
    limbs = bound > 2**19
    per_product = 2**32 if limbs else bound * bound
    acc_dtype = np.int64 if d * per_product < 2**62 else object
    names = ("hh", "hl", "ll") if limbs else ("g",)
    acc = {name: np.zeros((n, n), dtype=acc_dtype) for name in names}
    for start, stop in chunk_ranges(d, chunk_for(n)):
        block = gather(rows, start, stop, np.float64)
        if limbs:
            hi = np.floor(block / 65536.0)
            lo = block - hi * 65536.0
            parts = {"hh": hi @ hi.T, "hl": hi @ lo.T, "ll": lo @ lo.T}
        else:
            parts = {"g": block @ block.T}
        for name, part in parts.items():
            acc[name] += part.astype(np.int64).astype(acc_dtype)
    if limbs:
        hh, hl, ll = (acc[name].astype(object) for name in names)
        gram = hh * (1 << 32) + (hl + hl.T) * (1 << 16) + ll
    else:
        gram = acc["g"].astype(object)
    diag = [gram[i, i] for i in range(n)]
    return [[diag[i] + diag[j] - 2 * gram[i, j] for j in range(n)] for i in range(n)]


def mix_rows(rows: Sequence[np.ndarray], groups: Sequence[Sequence[int]], workers: int | None) -> list[np.ndarray]:
    """For each group, the half-to-even rounded mean of the rows it names (NNM's mixing step).

    Computed as a 0/1 matrix times the rows in float64: every output partial sum is at most
    len(group) * 2**31 < 2**53 for groups of fewer than 2**22 rows, hence exact.
    """
    n_out = len(groups)
    d = rows[0].size
    select = np.zeros((n_out, len(rows)))
    for i, group in enumerate(groups):
        select[i, list(group)] = 1.0
    sizes = {len(group) for group in groups}
    (size,) = sizes
    out = np.empty((n_out, d), dtype=np.int32)

    def work(start: int, stop: int) -> None:
        sums = (select @ gather(rows, start, stop, np.float64)).astype(np.int64)
        out[:, start:stop] = round_div(sums, size)

    map_chunks(work, d, 1, chunk_for(len(rows)))  # BLAS threads itself; never call it from our workers
    return list(out)


def k_smallest_sum(values: Sequence[int], k: int) -> int:
    return sum(sorted(values)[:k])
