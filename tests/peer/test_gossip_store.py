"""Gossip blob lookup is keyed by the (signed) sender: a member cannot shadow another member's blob."""
from __future__ import annotations

import hashlib
import os

from eth_account import Account

from peer.net.admission import EnvelopeValidator
from peer.net.chunking import split_blob
from peer.net.envelope import Envelope
from peer.net.gossip import GossipNode

FEDERATION = "0x" + "ab" * 20
CHAIN_ID = 31337
VICTIM, ATTACKER = Account.create(), Account.create()
MEMBERS = {VICTIM.address, ATTACKER.address}


def _chunks(account, blob: bytes, update_hash: bytes) -> list[bytes]:
    env = Envelope.create(account, federation=FEDERATION, chain_id=CHAIN_ID, round=1, update_hash=update_hash,
                          cid="bafkreix", wrapped_keys=b"", blob_sha256=hashlib.sha256(blob).digest(),
                          blob_size=len(blob), timestamp=1)
    return [c.to_bytes() for c in split_blob(account, env, blob, chunk_size=1000)]


def test_a_blob_gossiped_under_another_members_hash_does_not_shadow_theirs() -> None:
    validator = EnvelopeValidator(FEDERATION, CHAIN_ID, lambda a: a in MEMBERS, lambda: 1)
    node = GossipNode(validator=validator)  # not started: messages are fed to its admission directly
    victim_hash = os.urandom(32)
    garbage, honest = os.urandom(2500), os.urandom(2500)
    for data in _chunks(ATTACKER, garbage, victim_hash):  # the attacker's copy arrives first
        assert node.store.admit(data, own=False)
    assert node.blob(victim_hash, sender=VICTIM.address) is None
    for data in _chunks(VICTIM, honest, victim_hash):
        assert node.store.admit(data, own=False)
    assert node.blob(victim_hash, sender=VICTIM.address) == honest
    assert node.blob(victim_hash, sender=ATTACKER.address) == garbage
