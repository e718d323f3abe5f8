"""Member governance on anvil: the deployer keeps no power, proposals pass by reputation-weighted vote after a
delay and expire otherwise, every hostile call reverts with its named error, and rule bounds hold."""
from __future__ import annotations

import dataclasses

import pytest

from devnet.compile import load_contract
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, _config, oz_tree
from helpers.governance import ETH, TEST_GOV, Governed, deploy_governed
from ledger_tools.chain import AlreadyMember, FederationLedger, MemberInit, NotMember, Unauthorized
from ledger_tools.chain.governance import (
    AlreadyVotedOnProposal,
    FederationGovernor,
    GovParam,
    InsufficientStake,
    InvalidProposal,
    ProposalNotExecutable,
    ProposalNotReady,
    ProposalState,
    RuleInfeasible,
    VotingEnded,
)


@pytest.fixture
def gfed(anvil, dev_keys) -> Governed:
    return deploy_governed(anvil.rpc_url, dev_keys)


def test_deployer_has_no_power(gfed: Governed) -> None:
    ledger, deployer = gfed.ledger, gfed.ledger.account.address
    assert ledger.owner() == gfed.governor.address
    newcomer = gfed.outsiders[0].address
    calls = [
        lambda: ledger.admit_member(newcomer, b"\x42" * 32),
        lambda: ledger.register_auditor(newcomer, b"\x42" * 32),
        lambda: ledger._send(ledger.contract.functions.removeMember(gfed.accounts[0].address)),
        lambda: ledger._send(ledger.contract.functions.removeAuditor(newcomer)),
        lambda: ledger._send(ledger.contract.functions.transferOwnership(deployer)),
    ]
    for call in calls:
        with pytest.raises(Unauthorized):
            call()
    # the governor has no owner: the deployer is an outsider there
    with pytest.raises(NotMember):
        gfed.governor.propose_admit(newcomer, b"\x42" * 32, 1_000_000, ETH)
    with pytest.raises(NotMember):
        gfed.governor.propose_parameter(GovParam.PASS_BPS, 9000)


def test_admit_by_vote_lifecycle(gfed: Governed) -> None:
    cand = gfed.outsiders[0]
    cand_gov = gfed.gov_as(cand)
    cand_gov.stake(2 * ETH)
    pid = gfed.gov[0].propose_admit(cand.address, b"\x42" * 32, 500_000, 2 * ETH).proposal_id
    assert gfed.governor.state(pid) is ProposalState.ACTIVE
    for g in gfed.gov[:3]:
        g.vote(pid, True)
    with pytest.raises(AlreadyVotedOnProposal):
        gfed.gov[0].vote(pid, False)
    with pytest.raises(NotMember):
        cand_gov.vote(pid, True)
    with pytest.raises(ProposalNotReady):  # vote still running
        gfed.gov[0].execute(pid)
    gfed.advance(TEST_GOV.voting_period + 1)
    with pytest.raises(VotingEnded):
        gfed.gov[3].vote(pid, True)
    assert gfed.governor.state(pid) is ProposalState.QUEUED
    with pytest.raises(ProposalNotReady):  # execution delay
        gfed.gov[0].execute(pid)
    gfed.advance(TEST_GOV.execution_delay)
    gfed.gov_as(gfed.outsiders[1]).execute(pid)  # anyone executes
    assert cand.address in gfed.ledger.members()
    assert gfed.ledger.member_info(cand.address).weight == 500_000
    s = gfed.governor.stake_of(cand.address)
    assert (s.amount, s.unlock_at, s.bonded) == (2 * ETH, 0, True)
    p = gfed.governor.proposal(pid)
    assert p.executed and p.state is ProposalState.EXECUTED and p.for_weight == 3_000_000
    with pytest.raises(ProposalNotExecutable):
        gfed.gov[0].execute(pid)


def test_defeated_and_expired(gfed: Governed) -> None:
    pid = gfed.gov[0].propose_parameter(GovParam.MIN_STAKE, 2 * ETH).proposal_id
    gfed.gov[0].vote(pid, True)
    gfed.gov[1].vote(pid, True)  # 2 of 4: not a majority of the total weight
    gfed.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + 1)
    assert gfed.governor.state(pid) is ProposalState.DEFEATED
    with pytest.raises(ProposalNotExecutable):
        gfed.gov[0].execute(pid)
    pid = gfed.gov[0].propose_parameter(GovParam.MIN_STAKE, 2 * ETH).proposal_id
    for g in gfed.gov[:3]:
        g.vote(pid, True)
    gfed.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + TEST_GOV.execution_window + 1)
    assert gfed.governor.state(pid) is ProposalState.EXPIRED
    with pytest.raises(ProposalNotExecutable):  # execute late
        gfed.gov[0].execute(pid)
    assert gfed.governor.params().min_stake == ETH


def test_parameter_change_and_bounds(gfed: Governed) -> None:
    for param, value in [(GovParam.PASS_BPS, 4999), (GovParam.PASS_BPS, 10_000), (GovParam.VOTING_PERIOD, 10),
                         (GovParam.SLASH_BPS, 0), (GovParam.REPORTER_SHARE_BPS, 10_001), (0, 1), (10, 1)]:
        with pytest.raises(InvalidProposal):
            gfed.gov[0].propose_parameter(param, value)
    pid = gfed.gov[0].propose_parameter(GovParam.PASS_BPS, 7000).proposal_id
    gfed.pass_proposal(pid)
    assert gfed.governor.params().pass_bps == 7000


def test_admission_needs_stake(gfed: Governed) -> None:
    cand = gfed.outsiders[0]
    with pytest.raises(InvalidProposal):  # below minStake
        gfed.gov[0].propose_admit(cand.address, b"\x42" * 32, 500_000, ETH - 1)
    with pytest.raises(AlreadyMember):
        gfed.gov[0].propose_admit(gfed.accounts[1].address, b"\x42" * 32, 500_000, ETH)
    with pytest.raises(InvalidProposal):
        gfed.gov[0].propose_admit(cand.address, b"\0" * 32, 500_000, ETH)
    pid = gfed.gov[0].propose_admit(cand.address, b"\x42" * 32, 500_000, ETH).proposal_id
    gfed.gov_as(cand).stake(ETH // 2)
    with pytest.raises(InsufficientStake):
        gfed.pass_proposal(pid)
    assert cand.address not in gfed.ledger.members()


def test_auditor_register_and_remove(gfed: Governed) -> None:
    auditor = gfed.outsiders[2].address
    gfed.pass_proposal(gfed.gov[1].propose_register_auditor(auditor, b"\x55" * 32).proposal_id)
    assert auditor in [a.address for a in gfed.ledger.auditors()]
    with pytest.raises(InvalidProposal):
        gfed.gov[1].propose_register_auditor(auditor, b"\x56" * 32)
    gfed.pass_proposal(gfed.gov[2].propose_remove_auditor(auditor).proposal_id)
    assert auditor not in [a.address for a in gfed.ledger.auditors()]


def test_remove_refused_below_rule_bound(anvil, dev_keys) -> None:
    g = deploy_governed(anvil.rpc_url, dev_keys, n=5, rule="krum", f=1)  # krum needs 2f+3 = 5
    with pytest.raises(RuleInfeasible):
        g.gov[0].propose_remove(g.accounts[4].address)
    with pytest.raises(RuleInfeasible):  # leaving is refused the same way
        g.gov[4].leave()


def test_governor_refuses_infeasible_ledger(anvil, dev_keys) -> None:
    config = _config(dev_keys[1:5])  # 4 members
    params = dataclasses.replace(config.ledger_params(), rule="nnm+krum", f=1)  # needs 5
    ledger = FederationLedger.deploy(anvil.rpc_url, dev_keys[0].private_key, params,
                                     [MemberInit(m.address, b"\x01" * 32, m.weight) for m in config.members])
    artifact = load_contract("FederationGovernor")
    with pytest.raises(RuleInfeasible):
        FederationGovernor.deploy(anvil.rpc_url, dev_keys[0].private_key, ledger.address, TEST_GOV,
                                  abi=artifact.abi, bytecode=artifact.bytecode)


def _round(g: Governed, round_: int, members=None) -> None:
    members = members or g.members
    for i, m in enumerate(members):
        m.commit(round_, bytes([i + 1]) * 32, f"bafkreiupdate{round_}x{i}", 100)
    tree = oz_tree(round_, {})
    for m in members:
        if m.vote(round_, AGG, CID_AGG, tree.root, CID_REWARDS, []).finalized:
            return
    raise AssertionError(f"round {round_} did not finalize")


def test_rounds_finalize_across_admission_and_removal(gfed: Governed) -> None:
    _round(gfed, 1)
    cand = gfed.outsiders[0]
    gfed.gov_as(cand).stake(ETH)
    gfed.pass_proposal(gfed.gov[0].propose_admit(cand.address, b"\x42" * 32, 1_000_000, ETH).proposal_id)
    newcomer = gfed.ledger.with_account(cand.private_key)
    assert gfed.ledger.current_round() == 2
    _round(gfed, 2)  # admitted while round 2 is open: it takes part from round 3
    _round(gfed, 3, gfed.members + [newcomer])
    gfed.pass_proposal(gfed.gov[0].propose_remove(gfed.accounts[3].address).proposal_id)
    assert gfed.accounts[3].address not in gfed.ledger.members()
    assert gfed.ledger.totals()[0] == 4
    with pytest.raises(NotMember):
        gfed.members[3].commit(4, b"\x01" * 32, "bafkreix", 1)
    _round(gfed, 4, gfed.members[:3] + [newcomer])
    assert gfed.ledger.current_round() == 5


def test_member_leaving_mid_round_keeps_the_round_consistent(gfed: Governed) -> None:
    """A member that committed and then left no longer counts: the others can still all commit (the commit phase
    does not close early on its commit), and the round finalizes on the quorum of the reduced total weight."""
    gfed.members[3].commit(1, b"\x04" * 32, "bafkreiupdate1x3", 100)
    gfed.gov[3].leave()
    assert gfed.ledger.totals()[:2] == (3, 3_000_000)
    _round(gfed, 1, gfed.members[:3])
    assert gfed.ledger.current_round() == 2
    assert gfed.ledger.finalization(1).total_weight == 3_000_000
