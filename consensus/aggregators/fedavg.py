"""FedAvg: the sample-weighted mean (McMahan et al., "Communication-Efficient Learning of Deep Networks
from Decentralized Data", AISTATS 2017).

Definition: out_k = round_half_even( sum_i w_i q_ik / sum_i w_i ) with w_i = min(samples_i, sample_cap)
(integer self-reported sample counts, capped so a peer cannot claim the whole weight; default weight 1).
The quotient is an exact rational rounded once. Flower's `aggregate` computes the same mean in floating
point (machine-dependent last bits); ByzFL's `Average` is unweighted. Score: the capped weight w_i.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from consensus.aggregators.base import RuleInput, RuleOutput, check_int, no_extra, require
from consensus.chunks import Scratch, columns_for, map_chunks
from consensus.intmath import round_div


def weighted_mean(rows: Sequence[np.ndarray], weights: Sequence[int], workers: int | None) -> np.ndarray:
    """round_half_even(sum w_i q_i / sum w_i) exactly, for int32 rows and non-negative integer weights."""
    g = 0
    for w in weights:
        g = math.gcd(g, w)
    require(g > 0, "all weights are zero")
    reduced = [wi // g for wi in weights]
    total = sum(reduced)
    require(total < 2**46, "total weight too large (>= 2**46 after gcd reduction)")
    d = rows[0].size
    out = np.empty(d, dtype=np.int32)
    picked = [(wi, row) for wi, row in zip(reduced, rows) if wi]
    direct = total <= 2**31  # |sum w q| <= total * 2**31 <= 2**62
    picked_rows = [row for _, row in picked]
    weight_column = np.array([wi for wi, _ in picked], dtype=np.int64)[:, None]
    uniform = all(wi == 1 for wi, _ in picked)
    scratch = Scratch()

    def work(start: int, stop: int) -> None:
        if direct:
            block = scratch.rows("mean", picked_rows, start, stop, np.int64)
            if not uniform:
                block *= weight_column
            sums = np.sum(block, axis=0, out=scratch.get("mean_sum", (stop - start,), np.int64))
            out[start:stop] = round_div(sums, total)
            return
        # q = hi * 2**16 + lo; sum w q = 2**16 * (total*qh + rh) + sum w lo, remainder part < 2**17 * total
        hi_acc = np.zeros(stop - start, dtype=np.int64)
        lo_acc = np.zeros(stop - start, dtype=np.int64)
        for wi, row in picked:
            q = row[start:stop].astype(np.int64)
            hi_acc += wi * (q >> 16)
            lo_acc += wi * (q & 0xFFFF)
        qh, rh = np.divmod(hi_acc, total)
        out[start:stop] = qh * 65536 + round_div(rh * 65536 + lo_acc, total)

    map_chunks(work, d, workers, columns_for(len(picked)))
    return out


def fedavg(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    params = dict(params)
    cap = params.pop("sample_cap", None)
    no_extra("fedavg", params)
    require(inp.n >= 1, "fedavg needs at least one valid update")
    weights = list(inp.weights)
    if cap is not None:
        cap = check_int("sample_cap", cap, 1)
        weights = [min(w, cap) for w in weights]
    values = weighted_mean(inp.rows, weights, inp.workers)
    return RuleOutput(values, weights, {"sample_cap": cap})
