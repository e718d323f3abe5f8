"""`rule = auto`: the composition the robustness grid shows most uniform, for a federation's n and f.

Resolved once, when a federation is configured (the chain stores the concrete rule, so every peer and
auditor runs the same one). Preference order from docs/robustness.md (3 seeds, 12 attacks, 0-30 %
Byzantine): the first candidate that can aggregate n updates tolerating f.

dedup+rescale+nnm+centered_clipping first: `dedup` gives near-identical updates one vote between them (the
colluding attacks — ALIE, IPM, min-max, min-sum and their optimised forms — and mimic's copies send one
update from f members), NNM + centered clipping give the direction (clipping bounds what f large or far
updates can do, NNM the heterogeneity), `rescale` the length the honest updates support along it — the
robust rules alone shrink the step, which is what the inner-product attacks exploit. It needs n >= 2f + 1,
as arc+nnm+trimmed_mean (an earlier default) does.
"""
from __future__ import annotations

from consensus.feasibility import min_valid_updates

AUTO = "auto"
CANDIDATES: tuple[str, ...] = ("dedup+rescale+nnm+centered_clipping", "arc+nnm+trimmed_mean", "nnm+trimmed_mean",
                               "median", "fedavg")


def resolve_rule(rule: str, n: int, f: int) -> str:
    """`rule` itself, or for "auto" the first candidate feasible with n members and f Byzantine."""
    if rule != AUTO:
        return rule
    for candidate in CANDIDATES:
        if n >= min_valid_updates(candidate, f):
            return candidate
    return "fedavg"
