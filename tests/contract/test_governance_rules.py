"""The governor's on-chain rule feasibility (contracts/RuleFeasibility.sol) mirrors consensus.feasibility exactly:
same minimum for every rule the Python knows (base rules, pre-aggregators alone and composed) and f, unknown
rules refused by both."""
from __future__ import annotations

import pytest

from consensus.errors import AggregationError
from consensus.feasibility import BASE_RULES, PRE_AGGREGATORS, min_valid_updates
from helpers.governance import deploy_governed
from ledger_tools.chain.governance import UnknownRule

RULES = [*BASE_RULES, *PRE_AGGREGATORS, *(f"{p}+{b}" for p in PRE_AGGREGATORS for b in BASE_RULES),
         *(f"{p}+{q}+{b}" for p in PRE_AGGREGATORS for q in PRE_AGGREGATORS for b in ("krum", "median"))]
UNKNOWN = ["", "+", "krum+", "+krum", "nnm+", "krum+nnm", "Krum", "krum+krum", "nnm++krum", "foo"]


def test_rule_mirror(anvil, dev_keys) -> None:
    gov = deploy_governed(anvil.rpc_url, dev_keys).governor
    for rule in RULES:
        for f in range(6):
            assert gov.min_valid_updates(rule, f) == min_valid_updates(rule, f), (rule, f)
    for rule in UNKNOWN:
        with pytest.raises(AggregationError):
            min_valid_updates(rule, 1)
        with pytest.raises(UnknownRule):
            gov.min_valid_updates(rule, 1)
