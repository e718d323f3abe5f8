"""Gossip addressing and dialling: bind a wildcard, announce a dialable address, re-dial with backoff and warn
once per failure streak; a publish that reaches nobody is a warning too."""
from __future__ import annotations

import hashlib
import logging

import pytest
from eth_account import Account

from devnet.ports import free_port
from peer.net.admission import EnvelopeValidator
from peer.net.envelope import Envelope
from peer.net.gossip import GossipNode
from peer.net.gossip_addr import GossipAddressError
from peer.net.gossip_dial import DialPolicy
from peer.net.gossip_key import gossip_peer_id

pytestmark = pytest.mark.timeout(90)
FEDERATION = "0x" + "fe" * 20
MEMBER = Account.from_key(b"\x09" * 32)


def _validator() -> EnvelopeValidator:
    return EnvelopeValidator(federation=FEDERATION, chain_id=31337, is_member={MEMBER.address}.__contains__,
                             current_round=lambda: 1)


def _envelope(i: int) -> Envelope:
    return Envelope.create(MEMBER, federation=FEDERATION, chain_id=31337, round=1, update_hash=bytes([i]) * 32,
                           cid="bafkrei", wrapped_keys=b"", blob_sha256=hashlib.sha256(b"x").digest(), blob_size=1)


def _gossip_warnings(caplog, event: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "fedledger.gossip" and getattr(r, "event", None) == event]


def test_wildcard_listen_with_loopback_announce_connects() -> None:
    port = free_port()
    a = GossipNode(validator=_validator(), listen=f"/ip4/0.0.0.0/tcp/{port}", announce=f"/ip4/127.0.0.1/tcp/{port}")
    address = a.start()
    try:
        assert address == f"/ip4/127.0.0.1/tcp/{port}/p2p/{a.peer_id}"
        b = GossipNode(validator=_validator(), bootstrap=[address])
        b.start()
        try:
            assert a.wait_for_peers(1, 20) and b.wait_for_peers(1, 20), "nodes did not connect"
            b.publish_envelope(_envelope(1))
            assert a.wait_for(lambda: len(a.envelopes(1)) == 1, 15)
            assert a.wait_for(lambda: a.peer_count == 1 and b.peer_count == 1, 5)
        finally:
            b.stop()
    finally:
        a.stop()


@pytest.mark.parametrize("listen, announce, match", [
    ("/ip4/0.0.0.0/tcp/4001", "/ip4/0.0.0.0/tcp/4001", "not dialable"),
    ("/ip4/0.0.0.0/tcp/4001", None, "binds every interface"),
    ("/ip4/0.0.0.0/tcp/4001", "/ip4/127.0.0.1/tcp/0", "port 0"),
    ("127.0.0.1:4001", None, "not a multiaddr"),
    ("/ip4/127.0.0.1/tcp/4001/p2p/" + gossip_peer_id(b"\x01" * 32), None, "must look like"),
])
def test_undialable_addresses_are_refused(listen: str, announce: str | None, match: str) -> None:
    with pytest.raises(GossipAddressError, match=match):
        GossipNode(validator=_validator(), listen=listen, announce=announce)


def test_failed_dials_warn_once_per_streak_and_the_node_keeps_redialling(caplog) -> None:
    caplog.set_level(logging.DEBUG, logger="fedledger.gossip")
    seed, port = b"\x05" * 32, free_port()
    late = f"/ip4/127.0.0.1/tcp/{port}/p2p/{gossip_peer_id(seed)}"
    policy = DialPolicy(first_delay=0.1, max_delay=0.5, dial_timeout=2.0, warn_after=0.0, check_interval=0.2)
    dialer = GossipNode(validator=_validator(), bootstrap=[late], dial_policy=policy)
    dialer.start()
    peer = None
    try:
        assert dialer.wait_for(lambda: len(_gossip_warnings(caplog, "dial_failed")) >= 1, 10)
        dialer.wait_for(lambda: False, 2.0)  # several more failed dials ...
        (warning,) = _gossip_warnings(caplog, "dial_failed")  # ... one warning
        assert warning.levelno == logging.WARNING and late in warning.getMessage() and warning.peers == 0
        assert len([r for r in caplog.records if "failed" in r.getMessage() and r.levelno == logging.DEBUG]) >= 3

        peer = GossipNode(validator=_validator(), listen=f"/ip4/127.0.0.1/tcp/{port}", seed=seed)
        peer.start()  # the peer comes up late: found by the re-dial, no manual connect
        assert dialer.wait_for_peers(1, 15), "the dialler did not find the late peer"
        assert dialer.wait_for(lambda: bool(_gossip_warnings(caplog, "peer_reached")), 5)

        peer.stop()  # it goes away again: a new streak, a new (single) warning
        peer = None
        assert dialer.wait_for(lambda: len(_gossip_warnings(caplog, "dial_failed")) == 2, 20)
    finally:
        if peer is not None:
            peer.stop()
        dialer.stop()


def test_publishing_to_no_peer_is_a_warning_once_per_streak(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fedledger.gossip")
    with GossipNode(validator=_validator()) as node:
        node.publish_envelope(_envelope(1))
        node.publish_envelope(_envelope(2))
        (warning,) = _gossip_warnings(caplog, "no_peers")
        assert warning.levelno == logging.WARNING and "0 peers" in warning.getMessage()
        assert node.peer_count == 0
