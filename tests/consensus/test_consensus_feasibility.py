"""The one n-versus-f rule: what each rule tolerates, and that every layer asks the same function."""
from __future__ import annotations

import pytest

import consensus
from consensus.aggregators import PRE_AGGREGATORS, RULES
from consensus.feasibility import BASE_RULES
from consensus.feasibility import PRE_AGGREGATORS as FEASIBLE_PRE


@pytest.mark.parametrize(("rule", "n", "expected"), [
    ("krum", 5, 1), ("krum", 4, 0), ("krum", 2, -1), ("multi_krum", 20, 8), ("bulyan", 20, 4), ("bulyan", 6, 0),
    ("trimmed_mean", 5, 2), ("median", 4, 1), ("nnm+krum", 7, 2), ("nnm+bulyan", 3, 0), ("fedavg", 3, 2),
])
def test_max_f_follows_the_papers_bounds(rule, n, expected):
    assert consensus.max_f(rule, n) == expected


def test_every_rule_the_aggregator_knows_has_a_bound():
    assert set(RULES) == set(BASE_RULES) and set(PRE_AGGREGATORS) == set(FEASIBLE_PRE)


@pytest.mark.parametrize("rule", ["krum", "multi_krum", "bulyan", "trimmed_mean", "median", "nnm+krum"])
def test_aggregate_refuses_exactly_below_the_bound(rule):
    f = 1
    need = consensus.min_valid_updates(rule, f)
    import numpy as np

    blob = consensus.encode({"w": np.array([0.5, -0.25, 0.0, 1.0], dtype=np.float32)})
    consensus.aggregate(rule, [blob] * need, f=f)  # at the bound: runs
    with pytest.raises(consensus.AggregationError, match=f"needs at least {need} valid updates"):
        consensus.aggregate(rule, [blob] * (need - 1), f=f)


@pytest.mark.parametrize("bad", ["", "krum+nnm", "nope", "nnm+nope", None])
def test_unknown_rules_are_one_error(bad):
    with pytest.raises(consensus.AggregationError, match="unknown rule"):
        consensus.max_f(bad, 5)
