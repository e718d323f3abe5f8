"""Reputation-weighted voting: w <- w + alpha * (outcome - w), applied lazily in the member's next transaction."""
from __future__ import annotations

import pytest

from consensus.reputation import reputation_step
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS
from ledger_tools.chain import WEIGHT_ONE, AlreadySettled, VoteOutOfOrder

ZERO = b"\0" * 32


def _stored_total(fed) -> int:
    return sum(fed.ledger.member_info(a.address).weight for a in fed.accounts)


def test_outcomes_move_weights_lazily(make_federation):
    weights = [500_000, WEIGHT_ONE, WEIGHT_ONE, WEIGHT_ONE, WEIGHT_ONE]
    fed = make_federation(5, alpha_bps=1000, weights=weights)
    m = fed.members
    addr = [a.address for a in fed.accounts]
    assert fed.ledger.total_weight() == 4_500_000

    fed.commit_all(1)
    excluded = sorted([addr[2]], key=lambda s: int(s, 16))
    m[3].vote(1, b"\x66" * 32, CID_AGG, ZERO, CID_REWARDS)  # dissenting digest
    for voter in (m[0], m[1], m[2]):
        voter.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, excluded)
    fin = fed.ledger.finalization(1)
    assert fin.weight_for == 2_500_000 and fin.total_weight == 4_500_000
    # nothing changes until each member's own next transaction...
    assert fed.ledger.member_info(addr[3]).weight == WEIGHT_ONE
    # ...but the view already shows the pending result
    expected = [550_000, WEIGHT_ONE, 900_000, 900_000, 900_000]
    assert [fed.ledger.member_info(a).effective_weight for a in addr] == expected

    fed.commit_all(2)  # settles everyone who voted in round 1...
    assert [fed.ledger.member_info(a).weight for a in addr[:4]] == expected[:4]
    # ...but member 4 may still cast a late vote for round 1 (its vote deadline has not passed): deferred
    assert fed.ledger.member_info(addr[4]).weight == WEIGHT_ONE
    m[4].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS)  # voting round 2 forfeits round 1: settled as outcome 0
    assert [fed.ledger.member_info(a).weight for a in addr] == expected
    assert fed.ledger.total_weight() == sum(expected) == _stored_total(fed)
    updates = {u.member: u for u in fed.ledger.weight_updates()}
    assert updates[addr[0]].rewarded and updates[addr[0]].vote_round == 1
    assert not updates[addr[2]].rewarded  # voted the finalized digest but excluded itself
    assert not updates[addr[3]].rewarded and updates[addr[3]].vote_round == 1
    assert updates[addr[4]].vote_round == 0 and updates[addr[4]].missed_rounds == 1
    assert addr[1] not in updates  # already at 1.0: no change, no event


def test_missed_rounds_closed_form(federation):
    fed = federation
    m = fed.members
    addr = [a.address for a in fed.accounts]
    for r in (1, 2, 3):
        fed.commit_all(r, m[:4])
        fed.advance(100)
        for voter in m[:3]:
            if voter.vote(r, AGG, CID_AGG, ZERO, CID_REWARDS).finalized:
                break
    silent = fed.ledger.member_info(addr[4])
    assert silent.weight == WEIGHT_ONE
    assert silent.effective_weight == reputation_step(WEIGHT_ONE, 1000, False, 2) == 729_000
    m[4].commit(4, b"\1" * 32, "bafkreilate", 1)
    # the commit settles rounds 1-2; round 3 may still get a late vote from member 4 (deadline not passed)
    assert fed.ledger.member_info(addr[4]).weight == 810_000
    [update] = fed.ledger.weight_updates(addr[4])
    assert (update.old_weight, update.new_weight, update.missed_rounds) == (WEIGHT_ONE, 810_000, 2)
    fed.advance(100)
    m[4].vote(4, AGG, CID_AGG, ZERO, CID_REWARDS)  # its next vote settles round 3
    assert fed.ledger.member_info(addr[4]).weight == 729_000
    # member 3 committed but never voted: outcome 0 in rounds 1-3 as well
    assert fed.ledger.member_info(addr[3]).effective_weight == 729_000
    assert fed.ledger.total_weight() == _stored_total(fed)


def test_failed_rounds_do_not_move_weights(federation):
    fed = federation
    fed.commit_all(1)
    fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    fed.advance(250)
    fed.members[0].close_failed_round(1)
    fed.commit_all(2)
    assert all(fed.ledger.member_info(a.address).weight == WEIGHT_ONE for a in fed.accounts)
    assert fed.ledger.weight_updates() == []


def test_quorum_counts_weight_not_heads(make_federation):
    fed = make_federation(3, quorum_bps=6000)
    fed.owner.admit_member(fed.outsiders[0].address, b"\x09" * 32, 3 * WEIGHT_ONE)
    heavy = fed.owner.with_account(fed.outsiders[0].private_key)
    _finalize(fed, 1, fed.members)  # admitted while round 1 is open: it counts from round 2
    assert fed.ledger.finalization(1).total_weight == 3 * WEIGHT_ONE
    # total 6.0; quorum > 60 %: heavy (3.0) + one light (1.0) = 66 % finalizes, heavy alone (50 %) does not
    for member in fed.members + [heavy]:
        member.commit(2, b"\1" * 32, "bafkreiu", 1)
    assert not heavy.vote(2, AGG, CID_AGG, ZERO, CID_REWARDS).finalized
    assert fed.members[0].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS).finalized
    assert fed.ledger.finalization(2).weight_for == 4 * WEIGHT_ONE
    assert fed.ledger.finalization(2).total_weight == 6 * WEIGHT_ONE


def _finalize(fed, r, voters, *, commit=True, excluded=()):
    if commit:
        fed.commit_all(r)
    for voter in voters:
        if voter.vote(r, AGG, CID_AGG, ZERO, CID_REWARDS, list(excluded)).finalized:
            return
    raise AssertionError(f"round {r} did not finalize")


def test_late_votes_keep_honest_weight_and_settle_in_round_order(federation):
    """Member 4 is always slower than the majority, and commits in r+1 before its late vote for r lands."""
    fed = federation
    m = fed.members
    addr = [a.address for a in fed.accounts]
    _finalize(fed, 1, m[:3])
    fed.commit_all(2)  # member 4 commits in round 2 first: must not settle round 1 as missed
    assert m[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS).late
    _finalize(fed, 2, m[:3], commit=False)
    m[4].commit(3, b"\1" * 32, "bafkreiu", 1)
    assert m[4].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS).late
    assert fed.ledger.member_info(addr[4]).weight == WEIGHT_ONE
    assert fed.ledger.member_info(addr[4]).effective_weight == WEIGHT_ONE
    assert fed.ledger.weight_updates(addr[4]) == []
    # the silent member 3 loses alpha per finalized round, as before
    assert fed.ledger.member_info(addr[3]).effective_weight == reputation_step(WEIGHT_ONE, 1000, False, 1)
    with pytest.raises(VoteOutOfOrder):
        m[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)  # already voted round 2 (and round 1)
    # member 3 committed in rounds 2 and 3 without voting round 1: committing two rounds ahead settled round 1
    m[3].commit(3, b"\1" * 32, "bafkreiu", 1)
    with pytest.raises(AlreadySettled):
        m[3].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    assert m[3].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS).late  # round 2 is still open to its late vote
    assert fed.ledger.member_info(addr[3]).weight == reputation_step(900_000, 1000, True)


def test_late_vote_settles_the_pending_vote_first(federation):
    """Pending dissent in round 1 (outcome 0), then a late agreeing vote in round 2 (outcome 1): 1.0 → 0.9 → 0.91."""
    fed = federation
    m = fed.members
    a4 = fed.accounts[4].address
    fed.commit_all(1)
    m[4].vote(1, b"\x66" * 32, CID_AGG, ZERO, CID_REWARDS)  # on time, dissenting
    _finalize(fed, 1, m[:3], commit=False)
    _finalize(fed, 2, m[:3])
    m[4].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS)
    expected = reputation_step(reputation_step(WEIGHT_ONE, 1000, False), 1000, True)
    assert expected == 910_000 and fed.ledger.member_info(a4).weight == expected
    ups = fed.ledger.weight_updates(a4)
    assert [(u.vote_round, u.rewarded, u.new_weight) for u in ups] == [(1, False, 900_000), (2, True, 910_000)]
    assert fed.ledger.total_weight() == _stored_total(fed)


def test_late_vote_of_an_excluded_member_is_outcome_zero(federation):
    fed = federation
    m = fed.members
    a4 = fed.accounts[4].address
    _finalize(fed, 1, m[:3], excluded=[a4])
    assert m[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [a4]).late  # the finalized digest, but excluded
    assert fed.ledger.member_info(a4).weight == 900_000
