"""Exact integer building blocks shared by the aggregation rules.

Everything here returns the same integers on every machine: integer numpy arithmetic is exact, and the
only floating-point steps (the Gram matrix behind pairwise distances, the 0/1 mixing product of NNM and the
float64 sums of `exact_mean`) run on integer-valued float64 operands whose partial sums are proven to stay
below 2**53, so every partial sum is an exactly representable integer whatever the summation order, BLAS,
blocking or thread count. For the Gram the proof is checked per chunk on the chunk's own result (see
`gram`), so no magnitude is assumed and no separate pass over the updates is needed to bound them.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from consensus.chunks import Scratch, columns_for, map_chunks

EXACT = 1 << 53  # float64 represents every integer of magnitude <= 2**53
LIMB = 1 << 16
SPLIT_ABOVE = 1 << 20  # rows with some |q| above this enter the Gram product as two 16-bit-scaled limbs
CERTIFY_BELOW = float(EXACT)  # a chunk Gram whose diagonal stays below this is exact (see `gram`)
MEAN_COLUMNS = 1 << 15  # exact_mean's chunk: a 256 KiB float64 accumulator stays in L2


def round_div(numerator: np.ndarray, denominator: int) -> np.ndarray:
    """numerator / denominator rounded half to even, exactly, for int64 arrays and a positive int."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    num = np.asarray(numerator, dtype=np.int64)
    if denominator == 1:
        return num.copy()
    if num.size and max(-int(num.min()), int(num.max())) < 2**52 and denominator < 2**52:
        quotient_f = _float_quotient(num.astype(np.float64), denominator)
        if quotient_f is not None:
            return quotient_f.astype(np.int64)
    quotient, remainder = np.divmod(num, denominator)  # floor division: 0 <= remainder < denominator
    twice = 2 * remainder
    quotient += (twice > denominator) | ((twice == denominator) & ((quotient & 1) == 1))
    return quotient


def _float_quotient(numf: np.ndarray, denominator: int) -> np.ndarray | None:
    """round_half_even(numf / denominator) as float64, or None when the fast path cannot vouch for it.

    For integer-valued |numf| < 2**52 and denominator < 2**52: numf is exact in float64 and so is the correctly
    rounded quotient's error bound (< 1/2 ulp); rint() then gives the half-to-even rounding unless the true
    quotient lies within that error of a half-integer. The remainder r = num - q*den is computed exactly
    (integers below 2**53), and q is correct iff 2|r| <= den (an exact tie num/den = k + 1/2 is itself
    representable, so rint() breaks it to even). Anything else returns None: the caller divides in integers,
    which numpy does several times slower.
    """
    quotient_f = np.rint(numf / denominator)
    remainder = numf - quotient_f * denominator
    np.abs(remainder, out=remainder)
    if (remainder * 2 > denominator).any():
        return None
    return quotient_f


def exact_mean(rows: Sequence[np.ndarray], workers: int | None = None) -> np.ndarray:
    """round_half_even(sum_i q_i / m) of m int32 rows, as int32: the uniform mean (Multi-Krum's), exactly.

    Each column chunk is summed straight from the int32 rows into one float64 accumulator that stays in cache
    (no (m, c) block, no int64 copy): every partial sum of m < 2**21 int32 values is an integer of magnitude
    <= m * 2**31 < 2**52, exactly representable, so the sums are exact in any order, and `_float_quotient`
    rounds them verified (falling back to integer division). Same integers as `weighted_mean` with unit weights.
    """
    m = len(rows)
    if not 0 < m < 1 << 21:
        raise ValueError(f"exact_mean needs 1 <= m < 2**21 rows, got {m}")
    d = rows[0].size
    out = np.empty(d, dtype=np.int32)
    scratch = Scratch()

    def work(start: int, stop: int) -> None:
        acc = scratch.get("mean", (stop - start,), np.float64)
        acc[...] = rows[0][start:stop]
        for row in rows[1:]:
            np.add(acc, row[start:stop], out=acc)
        quotient = _float_quotient(acc, m)
        out[start:stop] = round_div(acc.astype(np.int64), m) if quotient is None else quotient

    map_chunks(work, d, workers, MEAN_COLUMNS)
    return out


def row_bounds(rows: Sequence[np.ndarray]) -> list[int]:
    """max |q| of each row (0 for an empty row)."""
    return [max(-int(r.min()), int(r.max())) if r.size else 0 for r in rows]


def gram_plan(bounds: Sequence[int], d: int) -> tuple[list[int], int, int]:
    """(rows to split into limbs, per-product bound P, columns per sub-chunk) for `_exact_chunk_gram`.

    Used only for column chunks whose plain product `gram` could not certify (diagonal >= 2**53). Exactness:
    every operand of the float64 product is an integer of magnitude <= sqrt(P), so each product term is <= P
    and any partial sum over a sub-chunk of c columns is <= c*P. With c <= 2**53 // P every partial sum, in
    whatever order or blocking BLAS adds (FMA included: it rounds an exact integer <= 2**53), is an exactly
    representable integer. Rows with some |q| > SPLIT_ABOVE (one saturating attacker, say) are split
    q = 2**16*hi + lo with 0 <= lo < 2**16 and |hi| <= 2**15, so they cost one extra row each instead of
    forcing tiny sub-chunks on every row; then P <= max(SPLIT_ABOVE, 2**16)**2 = 2**40 and c >= 2**13.
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
    """Exact pairwise squared Euclidean distances of int32 rows, as Python ints: d(i, j) = G_ii + G_jj - 2 G_ij."""
    g = gram(rows, workers)
    diag = np.diagonal(g).copy()
    if g.dtype != object and (diag.size == 0 or int(diag.max()) < 2**61):  # |d(i, j)| <= 4 max G_ii < 2**63
        return (diag[:, None] + diag[None, :] - 2 * g).tolist()
    g = g.astype(object)
    diag = diag.astype(object)
    return (diag[:, None] + diag[None, :] - 2 * g).tolist()


def gram(rows: Sequence[np.ndarray], workers: int | None = None) -> np.ndarray:
    """The exact Gram matrix G_ij = <q_i, q_j> of int32 rows (int64, or Python ints when it could overflow).

    Per column chunk (sized for memory only), the chunk is converted to float64 right before one symmetric
    rank-k product X X^T (numpy hands `a @ a.T` to BLAS syrk: one triangle, half the multiply-adds of a general
    product), on our chunk workers with BLAS on one thread. Exactness is certified afterwards from the chunk's
    own diagonal, with no magnitude assumed:
    - Diagonal. G_ii is a sum of non-negative integer terms q^2. While every exact intermediate result stays
      <= 2**53 it is representable, so BLAS's result (any order, blocking, FMA) equals the exact one; once an
      intermediate exceeds 2**53 the rounded value is >= 2**53 (rounding is monotone, 2**53 is representable)
      and adding non-negative terms keeps it there. So a computed G_ii < 2**53 proves G_ii is exact.
    - Off-diagonal. Any intermediate of G_ij is a sum over some subset S of the chunk's columns of q_i q_j, and
      by Cauchy-Schwarz |sum_S q_i q_j| <= sqrt(G_ii G_jj) < 2**53: by induction over BLAS's summation tree
      every intermediate is an exactly representable integer, so G_ij is exact.
    A chunk whose diagonal reaches 2**53 (rows with |q| near 2**31: a saturating attacker, say) is recomputed
    by `_exact_chunk_gram`, which bounds the magnitudes and splits large rows into limbs. Chunk Grams (each
    entry < 2**53 in magnitude) are summed in int64 for fewer than 2**10 chunks, in Python ints otherwise;
    integer addition is order-free, so neither the chunk size nor the thread count can change a result.
    """
    n = len(rows)
    d = rows[0].size if n else 0
    scratch = Scratch()

    def work(start: int, stop: int) -> np.ndarray:
        block = scratch.get("gram", (n, stop - start), np.float64)
        for i, row in enumerate(rows):
            block[i] = row[start:stop]
        product = np.matmul(block, block.T, out=scratch.get("gram_out", (n, n), np.float64))
        if float(np.diagonal(product).max(initial=0.0)) < CERTIFY_BELOW:
            return product.astype(np.int64)
        return _exact_chunk_gram([row[start:stop] for row in rows])

    parts = map_chunks(work, d, workers, columns_for(n)) if d else []
    exact_int64 = len(parts) < 1 << 10 and all(part.dtype != object for part in parts)
    total = np.zeros((n, n), dtype=np.int64 if exact_int64 else object)
    for part in parts:
        total += part if exact_int64 else part.astype(object)
    return total


def _exact_chunk_gram(rows: Sequence[np.ndarray]) -> np.ndarray:
    """The Gram of a few columns whose values are too large for a plain float64 product, as Python ints.

    The columns are cut into sub-chunks short enough for the magnitudes actually present (`gram_plan`); rows
    with some |q| > SPLIT_ABOVE enter the product as two limbs and are recombined exactly (`_combine_limbs`).
    """
    n = len(rows)
    d = rows[0].size
    bounds = row_bounds(rows)
    split, _per_product, chunk = gram_plan(bounds, d)
    m = n + len(split)
    block = np.empty((m, min(chunk, d)))
    total = np.zeros((m, m), dtype=object)
    for start in range(0, d, chunk):
        stop = min(start + chunk, d)
        sub = block[:, :stop - start]
        for i, row in enumerate(rows):
            sub[i] = row[start:stop]
        for pos, i in enumerate(split):  # row i keeps lo, row n+pos gets hi: q = lo + 2**16 * hi
            hi = sub[n + pos]
            np.multiply(sub[i], 1.0 / LIMB, out=hi)  # exact: a power of two
            np.floor(hi, out=hi)
            sub[i] -= hi * LIMB
        total += (sub @ sub.T).astype(np.int64).astype(object)
    return _combine_limbs(total, n, split) if split else total


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
