"""Ledger round parameters (rule, f, quorum, periods, reward) changed by member vote on anvil: a passed proposal
applies from the ledger's next round (the open round keeps its periods, quorum and pool), bounds and rule
feasibility are checked at proposal and again at execution, and no single account can change them."""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import pytest

from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, oz_tree
from helpers.governance import ETH, TEST_GOV, Governed, deploy_governed
from ledger_tools.chain import InvalidParameter, NotMember, Unauthorized
from ledger_tools.chain.governance import InvalidProposal, ProposalKind, RuleInfeasible, UnknownRule
from ledger_tools.chain.records import RoundParamsUpdate

BASE = RoundParamsUpdate(rule="fedavg", rule_param=0, f=1, quorum_bps=5000, commit_period=300, vote_period=300,
                         reward_per_round_wei=ETH)  # fixtures_chain._config with 300 s periods


def _deploy(anvil, dev_keys) -> Governed:
    return deploy_governed(anvil.rpc_url, dev_keys, n=5, commit_period=BASE.commit_period,
                           vote_period=BASE.vote_period)


@pytest.fixture
def gfed(anvil, dev_keys) -> Governed:
    return _deploy(anvil, dev_keys)


def _run_round(g: Governed, r: int, rewards: Mapping[str, int] | None = None):
    """Every member commits, then members vote one digest until it finalizes."""
    for i, m in enumerate(g.members):
        m.commit(r, bytes([i + 1]) * 32, f"bafkreiupdate{r}x{i}", 100)
    tree = oz_tree(r, rewards or {})
    for m in g.members:
        if m.vote(r, AGG, CID_AGG, tree.root, CID_REWARDS).finalized:
            return tree
    raise AssertionError(f"round {r} did not finalize")


def _changes(g: Governed) -> list[dict]:
    logs = g.ledger.contract.events.RoundParamsChanged().get_logs(from_block=g.ledger.deploy_block)
    return [dict(e.args) for e in logs]


def test_passed_proposal_applies_from_the_next_round(gfed: Governed) -> None:
    new = dataclasses.replace(BASE, rule="trimmed_mean", f=2, quorum_bps=6000, commit_period=200, vote_period=150,
                              reward_per_round_wei=2 * ETH)
    pid = gfed.gov[0].propose_round_params(new).proposal_id
    p = gfed.governor.proposal(pid)
    assert p.kind is ProposalKind.ROUND_PARAMS and gfed.governor.round_params_proposal(pid) == new
    open1 = gfed.ledger.round_info(1)
    gfed.pass_proposal(pid)  # 91 s: still in round 1's 300 s commit period
    assert gfed.ledger.current_round() == 1
    # the open round keeps its own: periods, quorum, pool
    assert gfed.ledger.round_info(1) == open1 and open1.commit_deadline - open1.start == 300
    assert gfed.ledger.params().round_params() == BASE
    assert gfed.ledger.params_for_round(1).round_params() == BASE
    assert gfed.ledger.params_for_round(2).round_params() == new
    [change] = _changes(gfed)
    assert (change["effectiveRound"], change["rule"], change["f"], change["rewardPerRound"]) == (
        2, "trimmed_mean", 2, 2 * ETH)

    a = [x.address for x in gfed.accounts]
    trees = {1: _run_round(gfed, 1, {a[0]: ETH})}  # finalizes at 3 of 5 (> 50 %)
    assert gfed.ledger.finalization(1).pool_wei == ETH
    r2 = gfed.ledger.round_info(2)
    assert (r2.commit_deadline - r2.start, r2.vote_deadline - r2.commit_deadline) == (200, 150)
    assert r2.unclaimed_wei == 2 * ETH and gfed.ledger.round_pool(2) == 2 * ETH  # the pool follows the reward
    assert gfed.ledger.params().round_params() == new
    r1 = gfed.ledger.round_info(1)  # a closed round keeps the periods it ran under
    assert (r1.commit_deadline, r1.vote_deadline) == (open1.commit_deadline, open1.vote_deadline)
    # a late vote for round 1 is still judged by round 1's deadline
    late = gfed.members[4].vote(1, AGG, CID_AGG, trees[1].root, CID_REWARDS)
    assert late.late

    # round 2 under quorum 60 %: 3 of 5 equal weights is 60 %, not above it; the 4th vote finalizes
    for i, m in enumerate(gfed.members):
        m.commit(2, bytes([i + 1]) * 32, f"bafkreiupdate2x{i}", 100)
    trees[2] = oz_tree(2, {a[1]: ETH, a[2]: ETH})
    finalized = [m.vote(2, AGG, CID_AGG, trees[2].root, CID_REWARDS).finalized for m in gfed.members[:4]]
    assert finalized == [False, False, False, True]
    assert gfed.ledger.finalization(2).pool_wei == 2 * ETH
    assert gfed.ledger.reserved() == 3 * ETH
    before = gfed.ledger.w3.eth.get_balance(a[1])
    claim = gfed.members[1].claim([2], [ETH], [trees[2].proof(a[1])])
    gas_price = gfed.ledger.w3.eth.get_transaction_receipt(claim.tx_hash)["effectiveGasPrice"]
    assert gfed.ledger.w3.eth.get_balance(a[1]) == before + ETH - claim.gas_used * gas_price
    _run_round(gfed, 3)  # rounds keep finalizing under the new parameters
    assert gfed.ledger.round_pool(4) == 2 * ETH


def test_failed_round_opens_the_next_with_the_new_parameters(gfed: Governed) -> None:
    new = dataclasses.replace(BASE, commit_period=40, vote_period=30, reward_per_round_wei=ETH // 2)
    gfed.pass_proposal(gfed.gov[1].propose_round_params(new).proposal_id)
    gfed.advance(2 * BASE.commit_period)
    gfed.members[0].close_failed_round(1)
    r2 = gfed.ledger.round_info(2)
    assert (r2.commit_deadline - r2.start, r2.vote_deadline - r2.commit_deadline, r2.unclaimed_wei) == (
        40, 30, ETH // 2)
    _run_round(gfed, 2)


def test_second_change_before_the_round_opens_replaces_the_first(gfed: Governed) -> None:
    first = dataclasses.replace(BASE, reward_per_round_wei=3 * ETH)
    second = dataclasses.replace(BASE, reward_per_round_wei=4 * ETH, commit_period=50)
    p1 = gfed.gov[0].propose_round_params(first).proposal_id
    p2 = gfed.gov[0].propose_round_params(second).proposal_id
    for g in gfed.gov:
        g.vote(p1, True)
        g.vote(p2, True)
    gfed.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + 1)
    gfed.gov[0].execute(p1)
    gfed.gov[0].execute(p2)
    assert [c["effectiveRound"] for c in _changes(gfed)] == [2, 2]
    assert gfed.ledger.params_for_round(2).round_params() == second
    _run_round(gfed, 1)
    assert gfed.ledger.round_pool(2) == 4 * ETH and gfed.ledger.params().round_params() == second


def test_out_of_bounds_and_infeasible_refused_at_proposal(gfed: Governed) -> None:
    g = gfed.gov[0]
    for field, value in [("quorum_bps", 4999), ("quorum_bps", 10_000), ("commit_period", 9),
                         ("vote_period", 30 * 86400 + 1), ("reward_per_round_wei", 2**96), ("rule", ""),
                         ("rule", "x" * 65)]:
        with pytest.raises(InvalidProposal) as err:
            g.propose_round_params(dataclasses.replace(BASE, **{field: value}))
        assert err.value.name == {"quorum_bps": "quorumBps", "commit_period": "commitPeriod",
                                  "vote_period": "votePeriod", "reward_per_round_wei": "rewardPerRound",
                                  "rule": "rule"}[field]
    for rule, f in [("krum", 2), ("bulyan", 1), ("trimmed_mean", 3), ("fedavg", 5)]:  # n = 5
        with pytest.raises(RuleInfeasible) as infeasible:
            g.propose_round_params(dataclasses.replace(BASE, rule=rule, f=f))
        assert (infeasible.value.rule, infeasible.value.f, infeasible.value.n) == (rule, f, 5)
    with pytest.raises(UnknownRule):
        g.propose_round_params(dataclasses.replace(BASE, rule="krum+nnm"))
    assert gfed.governor.proposal_count() == 0
    g.propose_round_params(dataclasses.replace(BASE, rule="krum", f=1))  # krum: n >= 2f+3 = 5


def test_infeasible_refused_at_execution_and_pending_rule_bounds_removals(gfed: Governed, anvil, dev_keys) -> None:
    krum = dataclasses.replace(BASE, rule="krum", f=1)
    pid = gfed.gov[0].propose_round_params(krum).proposal_id
    for g in gfed.gov:
        g.vote(pid, True)
    gfed.gov[4].leave()  # fedavg still fine with 4; krum f=1 now is not
    gfed.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + 1)
    with pytest.raises(RuleInfeasible):
        gfed.gov[0].execute(pid)
    assert _changes(gfed) == [] and gfed.ledger.params_for_round(2).round_params() == BASE

    # with 5 members again a krum change passes; then no member may leave or be removed, even though the open
    # round still runs fedavg: the rule set for the next round needs all five
    g5 = _deploy(anvil, dev_keys)
    g5.pass_proposal(g5.gov[0].propose_round_params(krum).proposal_id)
    assert g5.ledger.params().rule == "fedavg" and g5.ledger.params_for_round(2).rule == "krum"
    with pytest.raises(RuleInfeasible):
        g5.gov[0].propose_remove(g5.accounts[4].address)
    with pytest.raises(RuleInfeasible):
        g5.gov[3].leave()


def test_no_single_account_sets_round_params(gfed: Governed, make_federation) -> None:
    with pytest.raises(Unauthorized):  # the deployer
        gfed.ledger.set_round_params(BASE)
    with pytest.raises(Unauthorized):  # a member alone
        gfed.members[0].set_round_params(BASE)
    with pytest.raises(NotMember):  # the deployer cannot propose either
        gfed.governor.propose_round_params(BASE)
    # an owner-run ledger (no governor) checks the constructor's bounds by their names
    fed = make_federation(n=4)
    for field, value, name in [("quorum_bps", 4999, "quorumBps"), ("commit_period", 0, "commitPeriod"),
                               ("vote_period", 0, "votePeriod"), ("f", 4, "f"), ("rule", "", "rule"),
                               ("reward_per_round_wei", 2**96, "rewardPerRound")]:
        with pytest.raises(InvalidParameter) as err:
            fed.owner.set_round_params(dataclasses.replace(BASE, **{field: value}))
        assert err.value.name == name
    fed.owner.set_round_params(dataclasses.replace(BASE, reward_per_round_wei=ETH // 4))
    assert fed.ledger.params_for_round(2).reward_per_round_wei == ETH // 4
