"""Discovery of the members' gossip addresses from the ledger (`peer.net.discovery`), against a real anvil:
a member's own announcement is sent once (not again while unchanged), the others' dialable announcements are
returned, and a malformed one is ignored with exactly one warning."""
from __future__ import annotations

import logging

import pytest

from peer.net.discovery import LedgerDiscovery, dialable_peer_address

PID_A = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"
PID_B = "12D3KooWGzBZ6vBwU9YyPWSnTRG5oRu8xZuJ9N3Nd1cQZyR4nP7H"


@pytest.mark.parametrize("value, ok", [
    (f"/ip4/10.0.0.2/tcp/4001/p2p/{PID_A}", True),
    (f"/dns4/hospital-b.example/tcp/4001/p2p/{PID_A}", True),
    ("/ip4/10.0.0.2/tcp/4001", False),                     # no /p2p/: nothing to authenticate the peer by
    (f"/ip4/0.0.0.0/tcp/4001/p2p/{PID_A}", False),          # a wildcard is not dialable
    (f"/ip4/10.0.0.2/tcp/0/p2p/{PID_A}", False),
    (f"/ip4/10.0.0.2/udp/4001/p2p/{PID_A}", False),
    ("/ip4/10.0.0.2/tcp/4001/p2p/not-a-peer-id", False),
    ("hello, world", False),
])
def test_dialable_peer_address(value: str, ok: bool) -> None:
    assert (dialable_peer_address(value) == PID_A) is ok


def test_publish_once_and_ignore_a_malformed_announcement(federation, caplog) -> None:
    fed = federation
    me, good, bad = fed.members[0], fed.members[1], fed.members[2]
    members = set(fed.ledger.members())
    mine = f"/ip4/127.0.0.1/tcp/4001/p2p/{PID_A}"
    theirs = f"/ip4/127.0.0.1/tcp/4002/p2p/{PID_B}"
    discovery = LedgerDiscovery(me, me.account.address, own_peer_id=PID_A)

    assert discovery.publish(mine) is True
    block = fed.ledger.w3.eth.block_number
    assert discovery.publish(mine) is False            # unchanged: no transaction
    assert fed.ledger.w3.eth.block_number == block

    good.announce(theirs)
    bad.announce("/ip4/10.0.0.3/tcp/4001")             # a member's announcement without /p2p/
    fed.members[3].announce(f"/ip4/10.0.0.4/tcp/4001/p2p/{PID_A}")  # claims our peer id
    with caplog.at_level(logging.WARNING, logger="fedledger.gossip"):
        assert discovery.peers(members) == [theirs]     # ours, the malformed one and the impostor left out
        assert discovery.peers(members) == [theirs]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2, warnings                 # one per bad announcement, not one per refresh
    assert any(bad.account.address in w and "/ip4/10.0.0.3/tcp/4001" in w for w in warnings)

    bad.announce(f"/ip4/10.0.0.3/tcp/4001/p2p/{PID_B}")  # the latest announcement counts
    assert sorted(discovery.peers(members)) == sorted([theirs, f"/ip4/10.0.0.3/tcp/4001/p2p/{PID_B}"])
    assert discovery.peers(members - {good.account.address}) == [f"/ip4/10.0.0.3/tcp/4001/p2p/{PID_B}"]
