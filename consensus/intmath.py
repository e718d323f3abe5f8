"""Exact integer building blocks shared by the aggregation rules.

Everything here returns the same integers on every machine: integer numpy arithmetic is exact, and the
only floating-point steps (the Gram matrix behind pairwise distances, and the 0/1 mixing product of NNM)
run on integer-valued float64 operands whose partial sums are proven to stay within 2**53, so every
partial sum is an exactly representable integer whatever the summation order, BLAS, blocking or thread
count. Chunk sizes are derived from the magnitudes actually present (see `gram_plan`), never assumed.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from consensus.chunks import Scratch, columns_for, map_chunks

EXACT = 1 << 53  # float64 represents every integer of magnitude <= 2**53
LIMB = 1 << 16
SPLIT_ABOVE = 1 << 20  # rows with some |q| above this enter the Gram product as two 16-bit-scaled limbs


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


def row_bounds(rows: Sequence[np.ndarray]) -> list[int]:
    """max |q| of each row (0 for an empty row)."""
    return [max(-int(r.min()), int(r.max())) if r.size else 0 for r in rows]


def gram_plan(bounds: Sequence[int], d: int) -> tuple[list[int], int, int]:
    """(rows to split into limbs, per-product bound P, columns per chunk) for the Gram product.

    Exactness: every operand of the float64 product is an integer of magnitude <= sqrt(P), so each product
    term is <= P and any partial sum over a chunk of c columns is <= c*P. With c <= 2**53 // P every partial
    sum, in whatever order or blocking BLAS adds (FMA included: it rounds an exact integer <= 2**53), is an
    exactly representable integer, so the chunk's Gram matrix is exact. The chunk is therefore as long as the
    round's actual magnitudes allow, capped only by the memory budget (`columns_for`): updates with |q| <= 2**16
    (|x| < 1/16 at scale 2**-20, the usual case) allow 2**21 columns, where a fixed bound of 2**19 allowed 2**15.
    Rows with some |q| > SPLIT_ABOVE (one saturating attacker, say) are split q = 2**16*hi + lo with
    0 <= lo < 2**16 and |hi| <= 2**15, so they cost one extra row each instead of forcing tiny chunks or
    limbs on every row; then P <= max(SPLIT_ABOVE, 2**16)**2 = 2**40 and c >= 2**13.
    """
    split = [i for i, b in enumerate(bounds) if b > SPLIT_ABOVE]
    whole = max((b for i, b in enumerate(bounds) if b <= SPLIT_ABOVE), default=0)
    per_product = max(whole, LIMB - 1 if split else 0) ** 2
    exact_columns = EXACT // per_product if per_product else d
    if exact_columns < 1:
        raise ValueError(f"SPLIT_ABOVE={SPLIT_ABOVE} leaves single products above 2**53")
    chunk = max(1, min(exact_columns, columns_for(len(bounds) + len(split)), d))
    return split, per_product, chunk


def sq_distances(rows: Sequence[np.ndarray], workers: int | None = None) -> list[list[int]]:
    """Exact pairwise squared Euclidean distances of int32 rows, as Python ints.

    d(i, j) = G_ii + G_jj - 2 G_ij from the Gram matrix G, computed per column chunk (see `gram_plan` for why
    each chunk is exact) as one symmetric rank-k product X X^T of the stacked chunk (numpy hands `a @ a.T`
    to BLAS syrk, which computes one triangle: half the multiply-adds of a general product), spread over our
    chunk workers with BLAS on one thread. Chunk Grams are exact integers, summed in int64 when d*P < 2**62
    (no partial sum can overflow) or Python ints otherwise; integer addition is order-free, so neither the
    chunk size nor the thread count can change a distance.
    """
    n = len(rows)
    d = rows[0].size if n else 0
    bounds = row_bounds(rows)
    split, per_product, chunk = gram_plan(bounds, d)
    m = n + len(split)
    scratch = Scratch()

    def work(start: int, stop: int) -> np.ndarray:
        block = scratch.get("gram", (m, stop - start), np.float64)
        for i, row in enumerate(rows):
            block[i] = row[start:stop]
        for pos, i in enumerate(split):  # row i keeps lo, row n+pos gets hi: q = lo + 2**16 * hi
            hi = block[n + pos]
            np.multiply(block[i], 1.0 / LIMB, out=hi)  # exact: a power of two
            np.floor(hi, out=hi)
            block[i] -= hi * LIMB
        return (block @ block.T).astype(np.int64)

    parts = map_chunks(work, d, workers, chunk)
    acc_dtype = np.int64 if d * per_product < 2**62 else object
    gram = np.zeros((m, m), dtype=acc_dtype)
    for part in parts:
        gram += part.astype(acc_dtype)
    if split:
        gram = _combine_limbs(gram.astype(object), n, split)
    big = max(bounds, default=0)
    if gram.dtype != object and 4 * d * big * big >= 2**62:
        gram = gram.astype(object)
    diag = np.diagonal(gram).copy()
    return (diag[:, None] + diag[None, :] - 2 * gram).tolist()


def _combine_limbs(stacked: np.ndarray, n: int, split: list[int]) -> np.ndarray:
    """Gram of the original rows from the Gram of [lo-or-whole rows; hi limbs], in Python ints."""
    m = stacked.shape[0]
    padded = np.zeros((m + 1, m + 1), dtype=object)  # index m: a zero row for rows that were not split
    padded[:m, :m] = stacked
    hi = np.full(n, m)
    hi[split] = n + np.arange(len(split))
    lo = np.arange(n)
    return (padded[np.ix_(lo, lo)] + (padded[np.ix_(lo, hi)] + padded[np.ix_(hi, lo)]) * LIMB
            + padded[np.ix_(hi, hi)] * (LIMB * LIMB))


def mix_rows(rows: Sequence[np.ndarray], groups: Sequence[Sequence[int]], workers: int | None) -> list[np.ndarray]:
    """For each group, the half-to-even rounded mean of the rows it names (NNM's mixing step).

    Computed as a 0/1 matrix times the rows in float64: every output partial sum is at most
    len(group) * 2**31 < 2**53 for groups of fewer than 2**22 rows, hence exact whatever the order.
    """
    n_out = len(groups)
    d = rows[0].size
    select = np.zeros((n_out, len(rows)))
    for i, group in enumerate(groups):
        select[i, list(group)] = 1.0
    (size,) = {len(group) for group in groups}
    out = np.empty((n_out, d), dtype=np.int32)
    scratch = Scratch()

    def work(start: int, stop: int) -> None:
        block = scratch.rows("mix", rows, start, stop, np.float64)
        sums = np.matmul(select, block, out=scratch.get("mix_out", (n_out, stop - start), np.float64))
        out[:, start:stop] = round_div(sums.astype(np.int64), size)

    map_chunks(work, d, workers, columns_for(len(rows) + n_out))
    return list(out)


def k_smallest_sum(values: Sequence[int], k: int) -> int:
    return sum(sorted(values)[:k])
