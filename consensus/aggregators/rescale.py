"""Robust step length along the robust direction, composable as "rescale+<rule>".

Why: robust rules estimate the honest mean's *direction* well but shrink its *length*. Trimming, clipping
(ARC) and mixing (NNM) pull every heterogeneous update towards the centre, and the inner-product attacks
(IPM, ipm_opt, ALIE, min-sum) place f updates near the origin, inside the honest spread, where the rule keeps
them: the aggregate points the right way but is a fraction of the honest mean, so training stalls. Along one
direction the honest updates are far more concentrated than in d dimensions (their spread along u is one
coordinate of noise, not sqrt(d)), so a one-dimensional robust mean of the updates' components along the
aggregate's direction is a good estimate of the honest mean's component along it, even where the
d-dimensional estimate of the mean is poor.

Definition: with a = the inner rule's aggregate of the rows it receives (same f), p_i = <x_i, a> the
components of the *received* rows along a (put `rescale` first to measure the raw updates, before ARC/NNM
shrink them), and s = the trimmed mean of the p_i with f cut per side (n > 2f), the output is
    a * t,   t = clamp(s / |a|^2, 1, T_MAX),   T_MAX = 4,
i.e. the aggregate's direction with the length the robust 1-D mean of the updates gives it along that
direction, never shorter than the inner rule's: a lower bound of 0 let a line-searching attacker (ipm_opt)
drive t to 0 and stall training. Byzantine members move s only within the honest components' (f+1)-th
smallest and largest values, so a lengthened output is at most the largest honest component along a (and at
most 4x the inner rule's). Nothing here compares updates with each other, so near-copies with noise added are
treated like exact ones.
Scores: the inner rule's, unchanged (`finish` touches only the aggregate).

Exactness: 2<x_i, a> = |x_i|^2 + |a|^2 - |x_i - a|^2 from the exact distance matrix
(`consensus.intmath.sq_distances`); s and |a|^2 are exact integers, the scale is the fixed-point factor
F = floor(2**30 * sum(kept 2p_i) / (2 (n-2f) |a|^2)) clamped to [2**30, 2**32 - 1], and each coordinate is
round_half_even(a_j F / 2**30) (|a_j F| < 2**63: exact in int64), clipped to int32. The components are a
multiset of values, so the result is permutation-invariant.
"""
from __future__ import annotations

import numpy as np

from consensus.aggregators.arc import FACTOR_BITS
from consensus.aggregators.base import RuleInput
from consensus.feasibility import require_feasible
from consensus.intmath import round_div, sq_distances

#: Largest lengthening: F is kept below 2**32 so that a_j * F stays exact in int64.
FACTOR_MAX = (1 << (FACTOR_BITS + 2)) - 1
INT32_MAX = 2**31 - 1


def step_factor(rows: list[np.ndarray], aggregate: np.ndarray, f: int, workers: int | None) -> int:
    """The fixed-point factor F (2**30 = keep the length) of the robust 1-D mean along `aggregate`."""
    n = len(rows)
    dist = sq_distances([*rows, aggregate.astype(np.int32), np.zeros_like(rows[0])], workers)
    agg_sq = dist[n][n + 1]
    if agg_sq == 0:
        return 1 << FACTOR_BITS
    twice = sorted(dist[i][n + 1] + agg_sq - dist[i][n] for i in range(n))  # 2 <x_i, a>, exactly
    kept = twice[f:n - f]
    total = sum(kept)
    return min(FACTOR_MAX, max(1 << FACTOR_BITS, (total << FACTOR_BITS) // (2 * len(kept) * agg_sq)))


def rescale_values(aggregate: np.ndarray, factor: int) -> np.ndarray:
    """round_half_even(a * F / 2**30), clipped to the int32 range."""
    scaled = round_div(aggregate.astype(np.int64) * factor, 1 << FACTOR_BITS)
    return np.clip(scaled, -INT32_MAX, INT32_MAX).astype(np.int32)


class RescaledInput(RuleInput):
    """The received rows, unchanged, with `finish`: what turns the inner rule's aggregate into the output."""

    def finish(self, aggregate: np.ndarray) -> np.ndarray:
        return rescale_values(aggregate, step_factor(list(self.rows), aggregate, self.f, self.workers))


def rescale(inp: RuleInput) -> RuleInput:
    require_feasible("rescale", inp.n, inp.f)
    return RescaledInput(inp.rows, inp.weights, inp.f, inp.workers, mixed=inp.mixed)
