"""Centered Clipping (Karimireddy, He, Jaggi, "Learning from History for Byzantine Robust Optimization",
ICML 2021), rule "centered_clipping".

Definition: v_0 = the coordinate-wise median (the paper starts from the previous round's momentum; a round
here is stateless, so we start from a robust point every peer can recompute), then L times
    v <- v + round_half_even( sum_i clip_tau(x_i - v) / n ),   clip_tau(z) = z * min(1, tau / ||z||).
tau (`tau=`, an integer in fixed-point units) defaults to the distance from v_0 of the (n-2f)-th nearest
update, counting a group of near-identical updates (`consensus.copies`, the groups `dedup` merges) once, at its
farthest member: n >= 2f+1 makes that rank exist. Without copies, the f Byzantine updates and up to f honest
outliers are clipped in the first iteration whatever their scale. At the (n-f)-th (the default before) an
attacker that line-searches its distance sits just inside tau with all f copies unclipped: under ipm_opt with 6
of 20 attackers the rule fell to 2.6 % accuracy on digits, below ByzFL's definition (docs/robustness_byzfl.md).
Counted per row, f identical copies near the start (plain IPM) filled f of the n-2f unclipped ranks, so honest
outliers bore the clipping and the rule fell behind the plain mean; counted once, they take one rank, and a
line-searching attacker still gets no farther than before (its group is unclipped only with fewer than n-2f
groups nearer). With fewer than n-2f groups (honest near-copies), the per-row rank is used.
On NNM's mixed rows (`RuleInput.mixed`) tau is the (n-f)-th distance, per row. Copies do not exist there: every
mixed row averages n-f neighbours, at most f of them Byzantine, and NNM's averages of honest rows come out
near-identical by construction (counted once, they inflated tau and the default fell to 10 % under alie_opt).
Clipping 2f of the mixed rows clips mostly honest mixtures: rescale+nnm+centered_clipping then recovered too
slowly from a bad first round under ipm_opt at 30 % (40 % on two of eight seeds, docs/robustness_noisy.md).
L = `iterations=`
(default 3; ByzFL's `CenteredClipping` defaults to L = 1 from 0 with tau = 100 in float).
Each clipped difference is round_half_even(z * F / 2**30) with F = floor(2**30 sqrt(tau^2 / ||z||^2)) exactly
(see `consensus.aggregators.arc`); squared distances are exact integers, so the output is exact and
permutation-invariant.
Score: the final iteration's clip factor in millionths (10**6 for an unclipped update, never 0: clipping
bounds a member's influence, it does not reject it).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from consensus.aggregators.arc import FACTOR_BITS, clip_factor, scale_row, sq_norms
from consensus.aggregators.base import RuleInput, RuleOutput, check_int, no_extra
from consensus.aggregators.dedup import honest_pair_median_rank
from consensus.aggregators.trimmed_mean import trimmed
from consensus.copies import copy_groups, kth_pair_distance
from consensus.feasibility import require_feasible
from consensus.intmath import round_div, sq_distances

SCORE_ONE = 10**6


def centered_clipping(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    params = dict(params)
    iterations = check_int("iterations", params.pop("iterations", 3), 1)
    tau = params.pop("tau", None)
    no_extra("centered_clipping", params)
    require_feasible("centered_clipping", inp.n, inp.f)
    n = inp.n
    v = trimmed(inp, (n - 1) // 2).values.astype(np.int64)
    # one exact distance matrix serves the radius (pairwise, to the start) and the first iteration (to the start)
    first = sq_distances([*inp.rows, v.astype(np.int32)], inp.workers)
    dist = [int(x) for x in first[n][:n]]
    tau_sq = default_radius_sq(inp, first) if tau is None else check_int("tau", tau) ** 2
    factors = [1 << FACTOR_BITS] * n
    for iteration in range(iterations):
        if iteration:
            dist = sq_norms(inp.rows, inp.workers, v.astype(np.int32))
        total = np.zeros_like(v)
        for i, row in enumerate(inp.rows):
            diff = row.astype(np.int64) - v
            if dist[i] > tau_sq:
                factors[i] = clip_factor(tau_sq, dist[i])
                diff = scale_row(diff, factors[i])
            else:
                factors[i] = 1 << FACTOR_BITS
            total += diff
        v = np.clip(v + round_div(total, n), -(2**31 - 1), 2**31 - 1)
    scores = [max(1, math.isqrt(SCORE_ONE * SCORE_ONE * f * f >> (2 * FACTOR_BITS))) for f in factors]
    return RuleOutput(v.astype(np.int32), scores, {"iterations": iterations, "tau_sq": tau_sq})


def default_radius_sq(inp: RuleInput, dist: Sequence[Sequence[int]]) -> int:
    """The squared distance from the start of the (n-2f)-th nearest group of near-identical updates, or on mixed
    rows of the (n-f)-th nearest row (see above); `dist` = exact squared distances of [rows..., start]."""
    n, rank = inp.n, inp.n - 2 * inp.f
    to_start = [int(x) for x in dist[n][:n]]
    if inp.mixed:
        return sorted(to_start)[n - inp.f - 1]
    pairwise = [row[:n] for row in dist[:n]]
    groups = copy_groups(pairwise, kth_pair_distance(pairwise, honest_pair_median_rank(n, inp.f)))
    if len(groups) < rank:
        return sorted(to_start)[rank - 1]
    return sorted(max(to_start[i] for i in group) for group in groups)[rank - 1]
