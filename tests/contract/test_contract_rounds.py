"""Happy path against a real anvil: several rounds, model updates, failed rounds, claims, event queries."""
from __future__ import annotations

import pytest

from consensus.digest import vote_digest
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, ETH, oz_tree
from ledger_tools import chain
from ledger_tools.chain import Phase, RoundStatus


def test_several_rounds_then_claim_all(federation):
    fed = federation
    a = [x.address for x in fed.accounts]
    assert fed.ledger.current_round() == 1
    assert fed.ledger.model().round == 0 and fed.ledger.model().cid == "bafkreigenesis"
    trees = []
    for r in (1, 2, 3):
        assert fed.ledger.phase(r) == Phase.COMMIT
        rewards = {a[0]: ETH // 2, a[1]: ETH // 4, a[2]: ETH // 4}
        trees.append(fed.run_round(r, rewards, aggregate=bytes([r]) * 32))
        info = fed.ledger.round_info(r)
        assert info.status == RoundStatus.FINALIZED and info.commit_count == 5
        assert info.aggregate_hash == bytes([r]) * 32 and info.rewards_root == trees[-1].root
        assert fed.ledger.current_round() == r + 1
    model = fed.ledger.model()
    assert (model.round, model.hash, model.cid) == (3, bytes([3]) * 32, CID_AGG)
    assert fed.ledger.reserved() == 3 * ETH

    claimer = fed.members[0]
    before = fed.owner.w3.eth.get_balance(a[0])
    receipt = claimer.claim([1, 2, 3], [ETH // 2] * 3, [t.proof(a[0]) for t in trees])
    cost = receipt.gas_used * fed.owner.w3.eth.get_transaction_receipt(receipt.tx_hash)["effectiveGasPrice"]
    assert fed.owner.w3.eth.get_balance(a[0]) == before + 3 * ETH // 2 - cost
    assert fed.ledger.reserved() == 3 * ETH - 3 * ETH // 2
    assert all(fed.ledger.is_claimed(a[0], r) for r in (1, 2, 3))
    assert not fed.ledger.is_claimed(a[1], 1)
    [claim] = fed.ledger.claims(a[0])
    assert claim.rounds == (1, 2, 3) and claim.total_wei == 3 * ETH // 2
    assert fed.ledger.round_info(1).unclaimed_wei == ETH // 2


def test_events_give_auditor_everything(federation):
    fed = federation
    a = sorted((x.address for x in fed.accounts), key=lambda s: int(s, 16))
    fed.commit_all(1)
    commitments = fed.ledger.commitments(1)
    assert [c.member for c in commitments] == a  # canonical order: ascending addresses
    assert all(c.cid.startswith("bafkreiupdate1") and c.num_samples >= 100 for c in commitments)
    tree = oz_tree(1, {a[0]: ETH})
    excluded = [a[4]]
    for m in fed.members[:3]:
        m.vote(1, AGG, CID_AGG, tree.root, CID_REWARDS, excluded)
    votes = fed.ledger.votes(1)
    assert len(votes) == 3 and all(v.excluded == tuple(excluded) and v.weight == 1_000_000 for v in votes)
    fin = fed.ledger.finalization(1)
    assert fin.digest == vote_digest(AGG, tree.root, excluded)
    assert (fin.aggregate_cid, fin.rewards_cid, fin.excluded) == (CID_AGG, CID_REWARDS, tuple(excluded))
    assert (fin.weight_for, fin.total_weight, fin.pool_wei) == (3_000_000, 5_000_000, ETH)
    # the finalizing vote clears the digest's tally (a storage refund): the weight is in the events above
    assert fed.ledger.tally(1, fin.digest) == 0
    assert len(fed.ledger.admissions()) == 5


def test_phases_and_early_commit_close(federation):
    fed = federation
    assert fed.ledger.phase(1) == Phase.COMMIT and fed.ledger.phase(2) == Phase.NONE
    fed.commit_all(1, fed.members[:4])
    assert fed.ledger.phase(1) == Phase.COMMIT  # one member still missing
    fed.advance(100)
    assert fed.ledger.phase(1) == Phase.VOTE  # deadline passed
    fed.advance(100)
    assert fed.ledger.phase(1) == Phase.EXPIRED


def test_failed_round_keeps_model_and_opens_next(federation):
    fed = federation
    fed.commit_all(1)
    fed.members[0].vote(1, AGG, CID_AGG, b"\0" * 32, CID_REWARDS)
    fed.advance(250)
    fed.members[4].close_failed_round(1)  # anyone may close
    assert fed.ledger.round_info(1).status == RoundStatus.FAILED
    assert fed.ledger.phase(1) == Phase.FAILED and fed.ledger.failed_rounds() == [1]
    assert fed.ledger.current_round() == 2 and fed.ledger.model().round == 0
    fed.run_round(2)
    assert fed.ledger.model().round == 2


def test_pool_limited_by_funding_fixed_at_open_then_topped_up(make_federation):
    """Each round's pool is min(rewardPerRound, balance - reserved) when it opens; a top-up while a round is
    open counts from the next round on."""
    fed = make_federation(funding_wei=ETH + ETH // 2)
    a0 = fed.accounts[0].address
    assert fed.ledger.round_pool(1) == ETH
    fed.run_round(1, {a0: ETH})
    assert fed.ledger.round_pool(2) == ETH // 2  # only what was left unreserved
    fed.run_round(2, {a0: ETH // 2})
    assert fed.ledger.round_info(1).unclaimed_wei == ETH
    assert fed.ledger.round_info(2).unclaimed_wei == ETH // 2
    assert fed.ledger.round_pool(3) == 0 and fed.ledger.round_info(3).unclaimed_wei == 0  # open round: its pool
    fed.owner.fund(5 * ETH)
    assert fed.ledger.round_pool(3) == 0  # fixed when round 3 opened
    fed.run_round(3)  # nothing to split: empty tree
    assert fed.ledger.finalization(3).pool_wei == 0
    assert fed.ledger.round_pool(4) == ETH
    fed.run_round(4, {a0: ETH})
    assert fed.ledger.round_info(4).unclaimed_wei == ETH
    assert fed.ledger.reserved() == 2 * ETH + ETH // 2


def test_admission_and_auditor_registration(federation, dev_keys):
    fed = federation
    newcomer = fed.outsiders[0]
    fed.owner.admit_member(newcomer.address, b"\x42" * 32, 500_000)
    info = fed.ledger.member_info(newcomer.address)
    assert info.is_member and info.weight == 500_000 and info.enc_key == b"\x42" * 32
    assert fed.ledger.total_weight() == 5_500_000 and newcomer.address in fed.ledger.members()
    fed.owner.register_auditor(fed.outsiders[1].address, b"\x43" * 32)
    assert [x.address for x in fed.ledger.auditors()] == [fed.outsiders[1].address]
    # admitted while round 1 is open: it takes part from round 2 (tests/contract/test_contract_midround.py)
    with pytest.raises(chain.CommitClosed):
        fed.owner.with_account(newcomer.private_key).commit(1, b"\x01" * 32, "bafkreinew", 10)
    fed.run_round(1)
    fed.owner.with_account(newcomer.private_key).commit(2, b"\x01" * 32, "bafkreinew", 10)
