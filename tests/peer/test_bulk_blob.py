"""Bulk path (`peer.net.bulk`): a blob above one gossip chunk is not gossiped but fetched over a libp2p stream
by the envelope's receivers, checked against the signed envelope; a provider's wrong copy is never used."""
from __future__ import annotations

import hashlib
import logging
import os

import pytest
from eth_account import Account

from peer.net.admission import EnvelopeValidator
from peer.net.bulk import BlobKey
from peer.net.envelope import Envelope
from peer.net.gossip import GossipNode

pytestmark = pytest.mark.timeout(90)
FEDERATION = "0x" + "fe" * 20
MEMBERS = [Account.from_key(bytes([i + 1]) * 32) for i in range(2)]


def _validator() -> EnvelopeValidator:
    return EnvelopeValidator(federation=FEDERATION, chain_id=31337,
                             is_member={m.address for m in MEMBERS}.__contains__, current_round=lambda: 1)


def _envelope(account, blob: bytes) -> Envelope:
    return Envelope.create(account, federation=FEDERATION, chain_id=31337, round=1,
                           update_hash=hashlib.sha256(blob[:64]).digest(), cid="bafkrei", wrapped_keys=b"",
                           blob_sha256=hashlib.sha256(blob).digest(), blob_size=len(blob))


def test_large_blob_moves_over_the_stream_protocol_and_a_wrong_copy_is_refused(caplog) -> None:
    caplog.set_level(logging.INFO, logger="fedledger.gossip")
    blob = os.urandom(3 * 1024 * 1024)  # six gossip chunks' worth: takes the bulk path
    sender, receiver = GossipNode(validator=_validator()), GossipNode(validator=_validator())
    with sender, receiver:
        receiver.connect(sender.multiaddr)  # type: ignore[arg-type]
        env = _envelope(MEMBERS[0], blob)
        assert sender.publish_blob(env, blob, MEMBERS[0]) == 0  # held for the stream, no chunk gossiped
        sender.publish_envelope(env)
        assert receiver.wait_for(lambda: receiver.has_blob(env.update_hash, sender=env.sender), 30)
        assert receiver.blob(env.update_hash, env.blob_sha256, sender=env.sender) == blob
        assert sender.stats.published == 1 and receiver.stats.blobs_completed == 1 == sender.stats.blobs_completed

        # an envelope whose committer holds other bytes than it signed for: fetched, refused, never stored
        signed = os.urandom(1024 * 1024)
        liar = _envelope(MEMBERS[1], signed)
        sender.store.add_own(liar, signed)
        held = sender.store.lookup(BlobKey(bytes.fromhex(liar.sender[2:]), liar.update_hash, liar.blob_sha256))
        held.write_bytes(os.urandom(len(signed)))  # same size, other bytes
        sender.publish_envelope(liar)
        assert not receiver.wait_for(lambda: receiver.has_blob(liar.update_hash), 3)
        assert receiver.stats.blobs_completed == 1
        assert any(getattr(r, "event", None) == "bulk_mismatch" for r in caplog.records)
