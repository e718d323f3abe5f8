"""Coordinate-wise median (Yin et al., ICML 2018, as for the trimmed mean).

Definition: per coordinate, the middle value of the n sorted values; for even n the exact mean of the two
middle values rounded half to even (= trimmed mean with (n-1)//2 per side). Requires n > 2f.
Flower's `aggregate_median` (np.median) and ByzFL's `Median` (torch.quantile/median) take the float mean
of the two middle values for even n (ByzFL's torch.median would take the lower one).
Score: coordinates where the peer's value lies between the two middle values (inclusive; odd n: equals it).
"""
from __future__ import annotations

from typing import Any

from consensus.aggregators.base import RuleInput, RuleOutput, no_extra
from consensus.aggregators.trimmed_mean import trimmed
from consensus.feasibility import require_feasible


def median(inp: RuleInput, params: dict[str, Any]) -> RuleOutput:
    no_extra("median", params)
    require_feasible("median", inp.n, inp.f)
    return trimmed(inp, (inp.n - 1) // 2)
