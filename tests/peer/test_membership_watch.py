"""Gossip validation follows the on-chain member set without a restart: a member admitted (or removed) by vote
while a peer runs is accepted (or refused) as soon as the ledger logs it, not only from the next round on."""
from __future__ import annotations

import time

from helpers.governance import ETH, deploy_governed, envelope
from ledger_tools.chain import WEIGHT_ONE
from peer.net.admission import DropReason, EnvelopeValidator
from peer.net.membership import MembershipCache, MembershipWatcher


def _wait(predicate, timeout: float = 15.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_watcher_follows_admission_and_removal_between_round_refreshes(anvil, dev_keys):
    g = deploy_governed(anvil.rpc_url, dev_keys, n=4)
    cache = MembershipCache()
    cache.refresh(g.ledger, round=1)  # what the round loop does at the start of round 1
    cache.set_round(1)
    validator = EnvelopeValidator(g.ledger.address, g.ledger.chain_id, is_member=cache.is_member,
                                  current_round=cache.current_round)
    changes: list[tuple[list[str], list[str]]] = []
    watcher = MembershipWatcher(cache, g.ledger, interval=0.1, on_change=lambda a, r: changes.append((a, r)))
    newcomer, leaver = g.outsiders[0], g.accounts[3]
    hers = envelope(g, newcomer, 1, b"\x01" * 32)
    his = envelope(g, leaver, 1, b"\x02" * 32)
    assert validator.check(hers).reason is DropReason.NON_MEMBER
    assert validator.check(his).reason is None
    watcher.start()
    try:
        g.gov_as(newcomer).stake(ETH)
        g.pass_proposal(g.gov[0].propose_admit(newcomer.address, b"\x42" * 32, WEIGHT_ONE, ETH).proposal_id)
        assert _wait(lambda: cache.is_member(newcomer.address)), "the admission was not picked up"
        assert validator.check(hers).reason is None  # same round, no restart, no round-start refresh
        assert cache.members[newcomer.address] == b"\x42" * 32  # sealed to from now on

        g.pass_proposal(g.gov[0].propose_remove(leaver.address).proposal_id)
        assert _wait(lambda: not cache.is_member(leaver.address)), "the removal was not picked up"
        assert validator.check(his).reason is DropReason.NON_MEMBER
    finally:
        watcher.stop()
    assert changes == [([newcomer.address], []), ([], [leaver.address])]


def test_poll_without_membership_events_keeps_the_cache(anvil, dev_keys):
    g = deploy_governed(anvil.rpc_url, dev_keys, n=4)
    cache = MembershipCache()
    watcher = MembershipWatcher(cache, g.ledger)
    assert watcher.poll() is False  # first poll: reads the member set, starts watching
    assert set(cache.members) == {a.address for a in g.accounts}
    g.members[0].announce("/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN")
    assert watcher.poll() is False  # a block with another event: no re-read
