"""Krum and Multi-Krum (Blanchard, El Mhamdi, Guerraoui, Stainer, "Machine Learning with Adversaries:
Byzantine Tolerant Gradient Descent", NeurIPS 2017).

Krum: score(i) = sum of the squared Euclidean distances from update i to its k nearest other updates;
the output is the update with the smallest score (ties: lowest canonical index). Requires n >= 2f+3.
`neighbours` selects k, the one place the implementations disagree:
  "paper"  (default, alias "flower"): k = n-f-2, as in the paper and Flower's `aggregate_krum`;
  "byzfl":                            k = n-f-1, as in ByzFL's `Krum`/`MultiKrum`.
Multi-Krum: the m updates with the smallest scores (scores computed once; ties: lowest index),
averaged exactly (rounded half to even). m defaults to n-f, 1 <= m <= n-f. `weighting`:
  "uniform" (default): plain mean, as in the paper and ByzFL;
  "samples": weighted by the capped sample counts, as Flower's `aggregate_krum(to_keep=m)` does.
Distances are exact integers (see `consensus.intmath.sq_distances`); Flower's are float64 norms computed
pair by pair in Python, whose ties and last bits depend on the machine.
Score: 1 for a selected update, 0 otherwise.
"""
from __future__ import annotations

from typing import Any

from consensus.aggregators.base import RuleInput, RuleOutput, check_int, no_extra, require
from consensus.aggregators.fedavg import weighted_mean
from consensus.feasibility import require_feasible
from consensus.intmath import exact_mean, k_smallest_sum, sq_distances

NEIGHBOURS = {"paper": 2, "flower": 2, "blanchard": 2, "byzfl": 1}


def neighbour_count(n: int, f: int, neighbours: str) -> int:
    require(neighbours in NEIGHBOURS, f"neighbours must be one of {sorted(NEIGHBOURS)}, got {neighbours!r}")
    return n - f - NEIGHBOURS[neighbours]


def krum_scores(dist: list[list[int]], indices: list[int], k: int) -> list[int]:
    """Krum score of each index in `indices`, over neighbours drawn from `indices` only."""
    return [k_smallest_sum([dist[i][j] for j in indices if j != i], k) for i in indices]


def krum_ranking(inp: RuleInput, neighbours: str) -> list[int]:
    """Indices sorted by (Krum score, index)."""
    require_feasible("krum", inp.n, inp.f)
    k = neighbour_count(inp.n, inp.f, neighbours)
    scores = krum_scores(sq_distances(inp.rows, inp.workers), list(range(inp.n)), k)
    return sorted(range(inp.n), key=lambda i: (scores[i], i))


def krum(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    params = dict(params)
    neighbours = params.pop("neighbours", "paper")
    no_extra("krum", params)
    best = krum_ranking(inp, neighbours)[0]
    scores = [int(i == best) for i in range(inp.n)]
    return RuleOutput(inp.rows[best].copy(), scores, {"neighbours": neighbours, "selected": [best]})


def multi_krum(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    params = dict(params)
    neighbours = params.pop("neighbours", "paper")
    weighting = params.pop("weighting", "uniform")
    m = params.pop("m", None)
    no_extra("multi_krum", params)
    m = inp.n - inp.f if m in (None, 0) else check_int("m", m, 1)
    require(m <= inp.n - inp.f, f"multi_krum needs 1 <= m <= n-f (m={m}, n={inp.n}, f={inp.f})")
    require(weighting in ("uniform", "samples"), f"weighting must be 'uniform' or 'samples', got {weighting!r}")
    selected = sorted(krum_ranking(inp, neighbours)[:m])
    rows = [inp.rows[i] for i in selected]
    if weighting == "uniform":  # the same integers as weighted_mean with unit weights, in one cached pass
        values = exact_mean(rows, inp.workers)
    else:
        values = weighted_mean(rows, [inp.weights[i] for i in selected], inp.workers)
    scores = [int(i in selected) for i in range(inp.n)]
    return RuleOutput(values, scores, {"m": m, "neighbours": neighbours, "weighting": weighting,
                                       "selected": selected})
