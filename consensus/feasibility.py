"""How many Byzantine members a rule tolerates: the one n-versus-f rule every layer asks.

A rule name is a base rule optionally behind pre-aggregators (`nnm+krum`); each part needs a minimum number
of valid updates for a given f, and a composition needs the largest of them. The aggregators refuse to run
below it, deploy refuses a federation that could never reach it, and the simulator and demo pick f from it.
"""
from __future__ import annotations

from consensus.errors import AggregationError

#: Minimum number of valid updates as a function of f, per rule (papers' bounds, see docs/aggregators.md).
_MIN_VALID = {
    "fedavg": lambda f: 1,            # no robustness claim: f is ignored
    "krum": lambda f: 2 * f + 3,      # Blanchard et al. 2017
    "multi_krum": lambda f: 2 * f + 3,
    "trimmed_mean": lambda f: 2 * f + 1,
    "median": lambda f: 2 * f + 1,
    "bulyan": lambda f: 4 * f + 3,    # El Mhamdi et al. 2018
    "centered_clipping": lambda f: 2 * f + 1,  # Karimireddy et al. 2021: a Byzantine minority
}
#: Bucket size of `bucketing+<rule>` (Karimireddy et al. 2022 use s = 2 in their experiments).
BUCKET_SIZE = 2
#: Per pre-aggregator: (f, what the rule behind it needs) -> how many updates the composition needs.
_PRE_AGGREGATORS = {
    "nnm": lambda f, inner: max(inner, f + 1),   # Allouah et al. 2023: needs n > f
    "arc": lambda f, inner: max(inner, f + 1),   # Allouah et al. 2024: clips the 2f(n-f)/n largest, n > f
    # ceil(n / s) bucket means go to the inner rule with the same f (one Byzantine spoils at most one bucket)
    "bucketing": lambda f, inner: max(f + 1, BUCKET_SIZE * (inner - 1) + 1),
    # a trimmed mean (f per side) of the updates' components along the inner rule's aggregate: n > 2f
    "rescale": lambda f, inner: max(inner, 2 * f + 1),
    # merges only while the inner rule keeps enough rows; an honest majority (n > f) like nnm and arc
    "dedup": lambda f, inner: max(inner, f + 1),
}
BASE_RULES: tuple[str, ...] = tuple(_MIN_VALID)
PRE_AGGREGATORS: tuple[str, ...] = tuple(_PRE_AGGREGATORS)


def split_rule(rule: str) -> tuple[list[str], str]:
    """`"nnm+krum"` → (["nnm"], "krum"); raise AggregationError for an unknown part."""
    if not isinstance(rule, str) or not rule:
        raise AggregationError(f"unknown rule {rule!r}")
    *pre, base = rule.split("+")
    if base not in _MIN_VALID or any(p not in _PRE_AGGREGATORS for p in pre):
        names = ", ".join(BASE_RULES)
        pres = ", ".join(f"'{p}+'" for p in PRE_AGGREGATORS)
        raise AggregationError(f"unknown rule {rule!r}; expected one of {names} (optionally behind {pres})")
    return pre, base


def min_valid_updates(rule: str, f: int) -> int:
    """The fewest valid updates `rule` (a composition, or one of its parts alone) needs to tolerate `f`."""
    if isinstance(f, bool) or not isinstance(f, int) or f < 0:
        raise AggregationError(f"f must be a non-negative integer, got {f!r}")
    if rule in _PRE_AGGREGATORS:  # a pre-aggregator checking its own precondition
        return _PRE_AGGREGATORS[rule](f, 1)
    pre, base = split_rule(rule)
    need = _MIN_VALID[base](f)
    for p in reversed(pre):  # innermost first: each pre-aggregator feeds the rule behind it
        need = _PRE_AGGREGATORS[p](f, need)
    return need


def max_f(rule: str, n: int) -> int:
    """The largest f that `rule` tolerates with `n` valid updates; -1 when even f = 0 is impossible."""
    pre, base = split_rule(rule)
    if n < min_valid_updates(rule, 0):
        return -1
    if base == "fedavg" and not pre:
        return max(0, n - 1)  # FedAvg ignores f; any f < n is accepted (no robustness)
    f = 0
    while min_valid_updates(rule, f + 1) <= n:
        f += 1
    return f


def require_feasible(rule: str, n: int, f: int) -> None:
    """Raise AggregationError unless `rule` can aggregate `n` valid updates tolerating `f`."""
    need = min_valid_updates(rule, f)
    if n < need:
        raise AggregationError(f"{rule} needs at least {need} valid updates for f={f} (n={n})")
