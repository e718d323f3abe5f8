"""Membership changes while a round is open, on the real contract: the round keeps the members it opened with.

An admission used to change the open round: the commit phase closed on `commitCount >= memberCount`, so admitting
a member after everyone committed re-opened it, votes reverted VotingNotOpen until the newcomer committed, and the
round could fail (the README governance walkthrough hit it). Now a round's member count and total weight are fixed
when it opens; a member admitted while it is open counts from the next round, a removal leaves it at once."""
from __future__ import annotations

import pytest

from consensus.reputation import WEIGHT_ONE
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS
from ledger_tools import chain
from ledger_tools.chain import Phase

ZERO = b"\0" * 32  # an empty reward tree


def _remove(fed, address: str) -> None:
    fed.owner._send(fed.owner.contract.functions.removeMember(address))  # owner-only; no binding method


def test_admission_after_every_commit_keeps_the_round(federation):
    fed = federation
    fed.commit_all(1)
    assert fed.ledger.phase(1) == Phase.VOTE  # all five committed: voting opens at once
    newcomer = fed.outsiders[0]
    fed.owner.admit_member(newcomer.address, b"\x09" * 32)
    joined = fed.owner.with_account(newcomer.private_key)
    assert fed.ledger.phase(1) == Phase.VOTE  # still voting: the admission did not re-open the commit phase
    assert fed.ledger.round_info(1).member_count == 5 and fed.ledger.totals()[:2] == (6, 6 * WEIGHT_ONE)
    with pytest.raises(chain.CommitClosed):
        joined.commit(1, b"\x09" * 32, "bafkreinew", 10)
    with pytest.raises(chain.VotingClosed):
        joined.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    finalized = [m.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS).finalized for m in fed.members[:3]]
    assert finalized == [False, False, True]  # 3 of the round's 5, as without the admission
    assert fed.ledger.finalization(1).total_weight == 5 * WEIGHT_ONE

    # round 2 counts the newcomer: the commit phase waits for its commit, its vote counts
    assert fed.ledger.round_info(2).member_count == 6
    fed.commit_all(2)
    assert fed.ledger.phase(2) == Phase.COMMIT
    joined.commit(2, b"\x09" * 32, "bafkreinew", 10)
    assert fed.ledger.phase(2) == Phase.VOTE
    assert joined.vote(2, AGG, CID_AGG, ZERO, CID_REWARDS).weight == WEIGHT_ONE  # round 1 did not cost it weight
    finalized = [m.vote(2, AGG, CID_AGG, ZERO, CID_REWARDS).finalized for m in fed.members[:3]]
    assert finalized == [False, False, True]  # 4 of 6 weights
    assert fed.ledger.finalization(2).total_weight == 6 * WEIGHT_ONE


def test_admission_before_every_commit_keeps_the_round(federation):
    """The newcomer's commit cannot stand in for a missing member's: the round still waits for its own five."""
    fed = federation
    fed.commit_all(1, fed.members[:4])
    fed.owner.admit_member(fed.outsiders[0].address, b"\x09" * 32)
    with pytest.raises(chain.CommitClosed):
        fed.owner.with_account(fed.outsiders[0].private_key).commit(1, b"\x09" * 32, "bafkreinew", 10)
    assert fed.ledger.phase(1) == Phase.COMMIT
    fed.members[4].commit(1, b"\x05" * 32, "bafkreiu5", 10)
    assert fed.ledger.phase(1) == Phase.VOTE


def test_removal_mid_round_leaves_the_round_at_once(federation):
    """A removed member stops counting in the open round: the commit phase ends when the others committed, and the
    quorum is over the remaining weight. A newcomer removed in its admission round never counted in it."""
    fed = federation
    newcomer = fed.outsiders[0]
    fed.owner.admit_member(newcomer.address, b"\x09" * 32)
    fed.commit_all(1, fed.members[:4])
    assert fed.ledger.phase(1) == Phase.COMMIT
    _remove(fed, fed.accounts[4].address)  # had not committed: the four who did are all of the round now
    assert fed.ledger.phase(1) == Phase.VOTE and fed.ledger.round_info(1).member_count == 4
    _remove(fed, newcomer.address)  # admitted during round 1: round 1 is unchanged
    assert fed.ledger.round_info(1).member_count == 4 and fed.ledger.totals()[:2] == (4, 4 * WEIGHT_ONE)
    finalized = [m.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS).finalized for m in fed.members[:3]]
    assert finalized == [False, False, True]  # 3 of 4
    assert fed.ledger.finalization(1).total_weight == 4 * WEIGHT_ONE
    assert fed.ledger.round_info(2).member_count == 4
