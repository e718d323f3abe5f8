"""Coordinate-wise trimmed mean (Yin, Chen, Ramchandran, Bartlett, "Byzantine-Robust Distributed Learning:
Towards Optimal Statistical Rates", ICML 2018).

Definition: per coordinate, sort the n values, drop the f smallest and the f largest (f per side, an
integer, n > 2f), out = round_half_even(sum of the remaining n-2f / (n-2f)).
Flower's `aggregate_trimmed_avg` takes a proportion and cuts int(proportion*n) per side (f silently
rounded down) in float; ByzFL's `TrMean` cuts f per side like ours, in float.
Score: number of coordinates where the peer's value lies in the kept range [f-th smallest, f-th largest]
(ties at the boundary count as kept, so equal values earn equal credit and scores follow permutations).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from consensus.aggregators.base import RuleInput, RuleOutput, no_extra
from consensus.intmath import chunk_for, gather_t, map_chunks, round_div
from consensus.feasibility import require_feasible


def trimmed(inp: RuleInput, trim: int) -> RuleOutput:
    """Shared by trimmed mean and median: sort each coordinate's values, average the middle n-2*trim."""
    n, d = inp.n, inp.d
    keep = n - 2 * trim
    out = np.empty(d, dtype=np.int32)

    def work(start: int, stop: int) -> np.ndarray:
        block = gather_t(inp.rows, start, stop)  # (c, n)
        ordered = np.sort(block, axis=1)  # integers: any sort algorithm gives the same values
        middle = ordered[:, trim:n - trim].sum(axis=1, dtype=np.int64)
        out[start:stop] = round_div(middle, keep)
        low = ordered[:, trim:trim + 1]
        high = ordered[:, n - trim - 1:n - trim]
        return ((block >= low) & (block <= high)).sum(axis=0, dtype=np.int64)

    counts = map_chunks(work, d, inp.workers, chunk_for(n))
    scores = [int(x) for x in np.sum(counts, axis=0)] if counts else [0] * n
    return RuleOutput(out, scores)


def trimmed_mean(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    no_extra("trimmed_mean", params)
    require_feasible("trimmed_mean", inp.n, inp.f)
    return trimmed(inp, inp.f)
