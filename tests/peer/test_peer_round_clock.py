"""What the peer node adds on top of the chain binding: the wall-clock phase judgement, time-dependent
transactions with a fixed gas limit, the membership cache the gossip thread reads, and the binding calls the
node relies on (`member_keys`, `round_pool`, `chain_id`, `gas=`)."""
from __future__ import annotations

import pytest

from consensus.digest import vote_digest
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, ETH
from ledger_tools.chain import Phase, RoundInfo, RoundStatus, VoteDeadlineNotReached, VotingNotOpen
from peer.loop.round_clock import commit_window_open, judge_phase, send_time_dependent
from peer.net.membership import MembershipCache

ZERO = b"\0" * 32


def _info(status=RoundStatus.OPEN, commits=0, commit_deadline=100, vote_deadline=200) -> RoundInfo:
    return RoundInfo(1, status, 0, commit_deadline, vote_deadline, commits, 0, None, None)


def test_phase_is_judged_by_wall_clock_and_early_commit_close():
    assert judge_phase(_info(), 3, now=50) == Phase.COMMIT
    assert judge_phase(_info(commits=3), 3, now=50) == Phase.VOTE          # everyone committed: vote at once
    assert judge_phase(_info(), 3, now=100.5) == Phase.COMMIT               # within the clock slack
    assert judge_phase(_info(), 3, now=150) == Phase.VOTE
    assert judge_phase(_info(), 3, now=250) == Phase.EXPIRED
    assert judge_phase(_info(RoundStatus.FINALIZED), 3, now=0) == Phase.FINALIZED
    assert judge_phase(_info(RoundStatus.FAILED), 3, now=0) == Phase.FAILED
    assert judge_phase(_info(RoundStatus.NONE), 3, now=0) == Phase.NONE
    assert commit_window_open(_info(), 3, now=98, margin=1.0)
    assert not commit_window_open(_info(), 3, now=99.5, margin=1.0)
    assert not commit_window_open(_info(commits=3), 3, now=10, margin=1.0)
    assert not commit_window_open(_info(RoundStatus.FINALIZED), 3, now=10, margin=1.0)


def test_time_dependent_send_retries_with_fixed_gas_only_when_too_early():
    calls = []

    def send(gas):
        calls.append(gas)
        if gas is None:
            raise VotingNotOpen(round=1)
        return "mined"

    assert send_time_dependent(send, 123) == "mined" and calls == [None, 123]

    def other(gas):
        raise VoteDeadlineNotReached(round=1, voteDeadline=5) if gas is None else AssertionError("no")

    with pytest.raises(AssertionError):
        send_time_dependent(other, 1)


class _Ledger:
    def __init__(self):
        self.reads = 0

    def member_keys(self):
        self.reads += 1
        return {"0xA": b"a" * 32}

    def auditors(self):
        from ledger_tools.chain import AuditorInfo

        return [AuditorInfo("0xB", b"b" * 32)]


def test_membership_cache_reads_the_chain_once_per_round():
    cache, ledger = MembershipCache(), _Ledger()
    assert not cache.is_member("0xA") and cache.current_round() == 0
    cache.refresh(ledger, 1)
    cache.refresh(ledger, 1)
    assert ledger.reads == 1
    cache.set_round(1)
    assert cache.is_member("0xA") and not cache.is_member("0xB") and cache.current_round() == 1
    assert cache.recipients() == {"0xA": b"a" * 32, "0xB": b"b" * 32}
    cache.refresh(ledger, 2)
    assert ledger.reads == 2


def test_binding_extras_the_node_uses(federation):
    ledger = federation.ledger
    assert ledger.chain_id == ledger.w3.eth.chain_id
    keys = ledger.member_keys()
    assert set(keys) == set(ledger.members()) and all(len(k) == 32 for k in keys.values())
    assert keys[federation.accounts[0].address] == bytes([1] * 32)
    assert ledger.round_pool(1) == ETH                 # funded 20 ETH, nothing reserved at open


def test_fixed_gas_vote_reverts_with_its_custom_error_then_counts(federation):
    """gas= skips estimation; a vote sent too early is mined, reverts, and still surfaces as VotingNotOpen."""
    federation.commit_all(1, federation.members[:2])
    voter = federation.members[0]
    with pytest.raises(VotingNotOpen):
        voter.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, gas=400_000)
    federation.advance(101)
    receipt = voter.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, gas=400_000)
    assert receipt.digest == vote_digest(AGG, ZERO, []) and 0 < receipt.gas_used < 400_000
    federation.advance(101)
    closed = voter.close_failed_round(1, gas=200_000)
    assert closed.gas_used < 200_000 and federation.ledger.round_info(1).status == RoundStatus.FAILED
