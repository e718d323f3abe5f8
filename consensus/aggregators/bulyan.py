"""Bulyan (El Mhamdi, Guerraoui, Rouault, "The Hidden Vulnerability of Distributed Learning in
Byzantium", ICML 2018). Requires n >= 4f+3.

1. Selection: theta = n-2f updates chosen by Krum applied recursively: pick the Krum winner of the
   remaining set (k = max(1, n'-f-2) neighbours within the n' remaining, or n'-f-1 with
   neighbours="byzfl"; capped at n'-1), remove it, repeat. Ties: lowest canonical index.
2. Aggregation, per coordinate: of the theta selected values, the beta = theta-2f closest to their median
   (median = mean of the two middle values for even theta, compared exactly), ties in distance resolved in
   favour of the smaller value; out = round_half_even(mean of those beta values).
Flower's `aggregate_bulyan` does the same two steps in float with argpartition (arbitrary tie order);
ByzFL's Bulyan uses its own Krum neighbour count (n-f-1).
Score: for a selected update, the coordinates where its value lies in the averaged range; 0 otherwise.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from consensus.aggregators.base import RuleInput, RuleOutput, no_extra
from consensus.aggregators.krum import NEIGHBOURS, krum_scores, neighbour_count
from consensus.chunks import Scratch, columns_for, map_chunks
from consensus.feasibility import require_feasible
from consensus.intmath import round_div, sq_distances


def bulyan(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    params = dict(params)
    neighbours = params.pop("neighbours", "paper")
    no_extra("bulyan", params)
    n, f = inp.n, inp.f
    require_feasible("bulyan", n, f)
    neighbour_count(n, f, neighbours)  # validates the name
    dist = sq_distances(inp.rows, inp.workers)
    remaining = list(range(n))
    selected: list[int] = []
    for _ in range(n - 2 * f):
        size = len(remaining)
        k = min(size - 1, max(1, size - f - NEIGHBOURS[neighbours]))
        scores = krum_scores(dist, remaining, k)
        best = min(range(size), key=lambda pos: (scores[pos], remaining[pos]))
        selected.append(remaining.pop(best))
    selected.sort()
    theta = len(selected)
    beta = theta - 2 * f
    rows = [inp.rows[i] for i in selected]
    out = np.empty(inp.d, dtype=np.int32)
    scratch = Scratch()

    def work(start: int, stop: int) -> np.ndarray:
        block = scratch.columns("block", rows, start, stop)
        ordered = scratch.get("ordered", block.shape, np.int32)
        ordered[...] = block
        ordered.sort(axis=1)
        rows_idx = np.arange(len(ordered))
        centre2 = ordered[:, (theta - 1) // 2].astype(np.int64) + ordered[:, theta // 2]  # twice the median
        lo = np.zeros(len(ordered), dtype=np.int64)
        hi = np.full(len(ordered), theta - 1, dtype=np.int64)
        total = ordered.sum(axis=1, dtype=np.int64)
        for _ in range(2 * f):  # drop the farther end; on equal distance drop the larger value
            low_value = ordered[rows_idx, lo].astype(np.int64)
            high_value = ordered[rows_idx, hi].astype(np.int64)
            drop_right = 2 * high_value - centre2 >= centre2 - 2 * low_value
            total -= np.where(drop_right, high_value, low_value)
            hi -= drop_right
            lo += ~drop_right
        out[start:stop] = round_div(total, beta)
        low = ordered[rows_idx, lo][:, None]
        high = ordered[rows_idx, hi][:, None]
        return ((block >= low) & (block <= high)).sum(axis=0, dtype=np.int64)

    counts = np.sum(map_chunks(work, inp.d, inp.workers, columns_for(theta)), axis=0)
    scores = [0] * n
    for pos, i in enumerate(selected):
        scores[i] = int(counts[pos])
    return RuleOutput(out, scores, {"neighbours": neighbours, "selected": selected})
