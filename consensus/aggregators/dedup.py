"""One vote per update, not per sender: near-identical updates merged before the rule, composable as "dedup+<rule>".

Why: the strongest known attacks have every Byzantine member send the *same* update (ALIE, IPM, min-max,
min-sum, their line-searched variants, Fang's attack on Krum), and mimic has them all copy one honest
member's. A rule that gives each row one vote lets f copies pull f times as hard; honest members, training on
different data, never send near-copies of each other. FoolsGold (Fung, Yoon, Beschastnikh, RAID 2020) makes
the same observation about sybils; here it is made exact and stateless.

Definition: groups of near-identical rows (`consensus.copies`: exact squared distance within 1/NEAR_RATIO**2
of a reference distance, transitively) are each replaced by their exact mean (rounded half to even; a group
of exact copies is the copy itself) with the smallest weight in the group; the inner rule runs on the
merged rows with the same f, and every member of a group receives its group's score. The reference is the
k-th smallest pairwise distance with k the median rank of the C(n-f, 2) honest pairs: with at most f
Byzantine rows it is at most the median honest-honest distance, so far-away attackers cannot inflate it
into merging honest rows (identical attackers can only lower it, which merges less).

Liveness: merging never leaves fewer rows than the rest of the composition needs for f; if it would (only
possible when honest rows are near-copies of each other), nothing is merged and the inner rule runs on the
rows as received.

Evasion: an attacker that adds noise to its copies so that they are no longer within 1/NEAR_RATIO of the
honest spread escapes the merge, and then meets the inner rule as independent points spread like honest
ones (docs/robustness.md measures the copies as the papers define them).
"""
from __future__ import annotations

from consensus.aggregators.base import RuleInput
from consensus.aggregators.fedavg import weighted_mean
from consensus.copies import copy_groups, kth_pair_distance
from consensus.intmath import sq_distances


class MergedInput(RuleInput):
    """The merged rows, and which rows of the previous input each one stands for (`groups`)."""

    groups: tuple[tuple[int, ...], ...]


def honest_pair_median_rank(n: int, f: int) -> int:
    """0-based rank of the median of the C(n-f, 2) pairs two honest rows can form."""
    honest = max(n - f, 0)
    return max(honest * (honest - 1) // 2 - 1, 0) // 2


def dedup(inp: RuleInput, need: int = 1) -> RuleInput:
    """Merge near-identical rows unless that leaves fewer than `need` rows (what the inner rule needs for f)."""
    dist = sq_distances(inp.rows, inp.workers)
    groups = copy_groups(dist, kth_pair_distance(dist, honest_pair_median_rank(inp.n, inp.f)))
    if len(groups) < need or len(groups) == inp.n:
        groups = [[i] for i in range(inp.n)]
        rows = list(inp.rows)
    else:
        rows = [inp.rows[g[0]] if len(g) == 1 else weighted_mean([inp.rows[i] for i in g], [1] * len(g), inp.workers)
                for g in groups]
    out = MergedInput(rows, [min(inp.weights[i] for i in g) for g in groups], inp.f, inp.workers)
    object.__setattr__(out, "groups", tuple(tuple(g) for g in groups))
    return out
