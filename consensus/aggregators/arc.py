"""Adaptive Robust Clipping (Allouah, Guerraoui, Gupta, Jellouli, Rizk, Stephan, "Boosting Robustness by
Clipping Gradients in Distributed Learning", 2024), composable as "arc+<rule>".

Definition: with k = floor(2 f (n - f) / n), the k updates of largest norm are scaled down to the norm of the
(k+1)-th largest; the inner rule then runs on the clipped updates with the same f, and peer i receives the
inner rule's score of clipped update i. ByzFL's `ARC` computes k as int((2f/n)(n-f)) in float (one less when
the product is an integer that float rounds just below) and clips with float norms.

Exactness: squared norms are exact integers (`sq_norms`). An update with squared norm S above the threshold
T is multiplied by the fixed-point factor F = isqrt(T * 2**60 // S) (= floor(2**30 sqrt(T/S)), error below
2**-30 relative) and rounded half to even: q' = round(q F / 2**30), |q F| < 2**61, so int64 is exact. The
result depends only on the values (ties in norm are the same threshold), so it is permutation-equivariant.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from consensus.aggregators.base import RuleInput
from consensus.feasibility import require_feasible
from consensus.intmath import round_div, sq_distances

FACTOR_BITS = 30


def sq_norms(rows: Sequence[np.ndarray], workers: int | None, centre: np.ndarray | None = None) -> list[int]:
    """Exact ||row - centre||^2 per row (centre = 0 by default), from the exact distance matrix."""
    ref = np.zeros_like(rows[0]) if centre is None else centre
    dist = sq_distances([*rows, ref], workers)
    return [int(x) for x in dist[-1][:-1]]


def clip_factor(target_sq: int, sq: int) -> int:
    """floor(2**30 * sqrt(target_sq / sq)) for sq > target_sq >= 0: the fixed-point scale of a clipped row."""
    return math.isqrt((target_sq << (2 * FACTOR_BITS)) // sq)


def scale_row(row: np.ndarray, factor: int) -> np.ndarray:
    """round_half_even(row * factor / 2**30) as int64 (|row| < 2**32 and factor <= 2**30 keep it exact)."""
    return round_div(row.astype(np.int64) * factor, 1 << FACTOR_BITS)


def clipped_count(n: int, f: int) -> int:
    return 2 * f * (n - f) // n if n else 0


def arc(inp: RuleInput) -> RuleInput:
    require_feasible("arc", inp.n, inp.f)
    k = clipped_count(inp.n, inp.f)
    if k == 0:
        return inp
    norms = sq_norms(inp.rows, inp.workers)
    threshold = sorted(norms)[inp.n - k - 1]
    rows = [row if s <= threshold else scale_row(row, clip_factor(threshold, s)).astype(np.int32)
            for row, s in zip(inp.rows, norms)]
    return RuleInput(rows, inp.weights, inp.f, inp.workers, mixed=inp.mixed)
