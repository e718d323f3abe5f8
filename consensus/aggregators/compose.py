"""Run a composed rule `pre1+…+base` over rows: the one definition the protocol, the attacks and the tests share.

Pre-aggregators run in order; each may group rows (bucketing: `groups`) and may carry a `finish` step
(rescale) that turns the inner aggregate into the output, applied outermost last. Keeping this in one place
means an attack that searches against "the federation's rule" searches against exactly what peers compute.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from consensus.aggregators import PRE_AGGREGATORS, RULES
from consensus.aggregators.base import RuleInput, RuleOutput
from consensus.aggregators.dedup import dedup
from consensus.feasibility import min_valid_updates


@dataclass(frozen=True)
class Composed:
    """The base rule's output (scores per row of its input), the final aggregate, and for each base row the
    positions of the original rows it stands for."""

    out: RuleOutput
    values: np.ndarray
    members: list[list[int]]


def run_composed(pre: Sequence[str], base: str, inp: RuleInput, params: dict[str, Any]) -> Composed:
    """Apply the pre-aggregators `pre` in order, then `base` with `params`, then every finish step."""
    members = [[pos] for pos in range(inp.n)]
    finishes: list[Callable[[np.ndarray], np.ndarray]] = []
    for k, name in enumerate(pre):
        if name == "dedup":  # merges only while what follows it keeps enough rows for f
            inp = dedup(inp, min_valid_updates("+".join([*pre[k + 1:], base]), inp.f))
        else:
            inp = PRE_AGGREGATORS[name](inp)
        groups = getattr(inp, "groups", None)  # bucketing: one row per bucket of previous rows
        if groups is not None:
            members = [[pos for row in group for pos in members[row]] for group in groups]
        finish = getattr(inp, "finish", None)
        if finish is not None:
            finishes.append(finish)
    out = RULES[base](inp, params)
    values = out.values
    for finish in reversed(finishes):
        values = finish(values)
    return Composed(out, values, members)
