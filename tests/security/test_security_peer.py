"""Hostile cases for the peer's own checks, with the real seal, envelopes and membership cache (no network).

- collect: only on-chain commitments count; every blob is unsealed naming the *committing* member as sender and
  checked against the committed hash, whatever gossip or IPFS hands over (replayed, copied, foreign, tampered).
- model store: the global model is used only if its bytes hash to the chain's model hash (a CID is not enough).
- gossip admission via the membership cache: auditors and outsiders are not senders; chunks are bound like
  envelopes (round, federation, chain).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import time
from types import SimpleNamespace

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account

from consensus import Commitment
from ledger_tools.blobstore import BlobIntegrityError, InMemoryBlobStore
from peer.crypto.seal import seal, unseal
from peer.loop.collect import collect_updates
from peer.loop.log import NodeLog
from peer.loop.model_store import ModelStore
from peer.loop.retry import Retrier
from peer.net.admission import DropReason, EnvelopeValidator
from peer.net.chunking import split_blob
from peer.net.envelope import Envelope
from peer.net.membership import MembershipCache

FEDERATION = Account.from_key(b"\x7f" * 32).address
OTHER_FEDERATION = Account.from_key(b"\x7e" * 32).address
CHAIN_ID = 31337
PEERS = [Account.from_key(bytes([i]) * 32) for i in range(1, 8)]
ME = PEERS[0]
KEYS = {p.address: X25519PrivateKey.from_private_bytes(bytes([0x40 + i]) * 32) for i, p in enumerate(PEERS)}


def _pub(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


RECIPIENTS = {a: _pub(k) for a, k in KEYS.items()}


def _seal(update: bytes, sender: str, *, round_: int = 5, federation: str = FEDERATION, recipients=None) -> bytes:
    return seal(update, recipients or RECIPIENTS, federation=federation, round=round_, sender=sender)


def _my_unseal(sealed: bytes, sender: str, round_: int) -> bytes:
    """What `peer.loop.context.NodeContext.unseal` does: our key, our federation, the committing member as sender."""
    return unseal(sealed, ME.address, KEYS[ME.address], federation=FEDERATION, round=round_, sender=sender)


class Gossip:
    """The part of `GossipNode` the collector uses: accepted envelopes, blobs by update hash."""

    def __init__(self, envelopes=(), blobs=None) -> None:
        self._envelopes, self.blobs = list(envelopes), dict(blobs or {})

    def envelopes(self, round):
        return [e for e in self._envelopes if e.round == round]

    def blob(self, update_hash, blob_sha256=None, *, sender=None):
        return self.blobs.get(update_hash)

    def has_blob(self, update_hash, *, sender=None):
        return update_hash in self.blobs

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate() and time.monotonic() < deadline:
            time.sleep(0.01)
        return predicate()


def _envelope(account, update_hash: bytes, round_: int = 5) -> Envelope:
    return Envelope.create(account, federation=FEDERATION, chain_id=CHAIN_ID, round=round_, update_hash=update_hash,
                           cid="bafkreix", wrapped_keys=b"", blob_sha256=b"\1" * 32, blob_size=1, timestamp=1)


def test_collect_keeps_only_committed_blobs_sealed_by_their_committer_for_this_round():
    store = InMemoryBlobStore()
    updates = {p.address: os.urandom(64) + bytes([i]) for i, p in enumerate(PEERS)}
    h = {a: hashlib.sha256(u).digest() for a, u in updates.items()}
    honest, replayed, copier, foreign, swapped, stranger, uncommitted = (p.address for p in PEERS)
    honest_blob = _seal(updates[honest], honest)
    commitments = [
        Commitment(honest, h[honest], store.add(honest_blob), 10, round=5),
        # gossip serves this member's blob of an earlier round under its hash; IPFS holds the right one
        Commitment(replayed, h[replayed], store.add(_seal(updates[replayed], replayed)), 10, round=5),
        # commits the honest member's hash and CID: the blob names the honest member as sender
        Commitment(copier, h[honest], store.add(honest_blob), 10, round=5),
        # its blob was sealed for another federation (a replay from a federation with the same members)
        Commitment(
            foreign, h[foreign], store.add(_seal(updates[foreign], foreign, federation=OTHER_FEDERATION)), 10, round=5
        ),
        # commits one update's hash but stores a blob of another update (equivocation on IPFS)
        Commitment(swapped, h[swapped], store.add(_seal(os.urandom(64), swapped)), 10, round=5),
        # sealed without a key for us
        Commitment(
            stranger,
            h[stranger],
            store.add(
                _seal(updates[stranger], stranger, recipients={a: k for a, k in RECIPIENTS.items() if a != ME.address})
            ),
            10,
            round=5,
        ),
    ]
    gossip = Gossip(
        envelopes=[_envelope(PEERS[-1], h[uncommitted]), _envelope(PEERS[0], b"\x42" * 32)],
        blobs={
            h[replayed]: _seal(updates[replayed], replayed, round_=4),
            h[uncommitted]: _seal(updates[uncommitted], uncommitted),  # gossiped, never committed
        },
    )
    # our own "local" copy does not match our commitment (e.g. a stale artefact): it is not trusted
    got, report = collect_updates(5, commitments, unseal=_my_unseal, blobstore=store, gossip=gossip,
                                  local={honest: b"stale"}, gossip_wait=0.2)
    by_peer = {u.member: u.update for u in got}
    assert [u.member for u in got] == [c.member for c in commitments]  # exactly the on-chain set, nothing else
    assert by_peer[honest] == updates[honest] and report.source[honest] == "ipfs"
    assert by_peer[replayed] == updates[replayed] and report.source[replayed] == "ipfs"
    for bad, why in [(copier, "WrongSender"), (foreign, "WrongFederation"), (stranger, "NotARecipient"),
                     (swapped, "update-hash-mismatch")]:
        assert by_peer[bad] is None and why in report.rejected[bad], (bad, report.rejected.get(bad))
    assert uncommitted not in by_peer
    # our signed envelope naming another hash than our commitment is on record; the commitment still counts
    assert report.equivocations == {honest: "0x" + "42" * 32}


def test_gossip_copy_under_a_committed_hash_by_another_sender_falls_back_to_ipfs():
    """A Byzantine member gossips its own blob under an honest member's committed update hash (it can sign chunks
    with any update hash): unsealing names the committer, fails, and IPFS supplies the real blob."""
    store = InMemoryBlobStore()
    victim, attacker = PEERS[1].address, PEERS[2].address
    update = os.urandom(100)
    c = Commitment(victim, hashlib.sha256(update).digest(), store.add(_seal(update, victim)), 3, round=5)
    gossip = Gossip(blobs={c.update_hash: _seal(os.urandom(100), attacker)})
    [got], report = collect_updates(5, [c], unseal=_my_unseal, blobstore=store, gossip=gossip, gossip_wait=0.2)
    assert got.update == update and report.source[victim] == "ipfs"
    [got], report = collect_updates(5, [c], unseal=_my_unseal, blobstore=None, gossip=gossip, gossip_wait=0.2)
    assert got.update is None and victim in report.rejected  # no IPFS: excluded, never accepted


# ------------------------------------------------------------------------------ global model


def _model_store(tmp_path, chain_hash: bytes, cid: str, store) -> ModelStore:
    nlog = NodeLog(ME.address, stream=io.StringIO())
    ledger = SimpleNamespace(model=lambda: SimpleNamespace(hash=chain_hash, cid=cid, round=4))
    retry = Retrier(nlog, sleep=lambda s: None, should_stop=lambda: False, attempts=1)
    return ModelStore(tmp_path / "models", ledger=ledger, blobstore=store, retry=retry, nlog=nlog)


def test_global_model_is_checked_against_the_chain_hash_not_just_its_cid(tmp_path):
    store = InMemoryBlobStore()
    model, other = b"M4" * 500, b"evil" * 250
    good_hash = hashlib.sha256(model).digest()
    # the chain's CID names other bytes (consistent with the CID) than the chain's hash: refused
    ms = _model_store(tmp_path, good_hash, store.add(other), store)
    with pytest.raises(BlobIntegrityError, match="does not match the expected"):
        ms.current(5)
    assert ms.cached(good_hash) is None and not list((tmp_path / "models").glob("*"))  # nothing cached

    ms = _model_store(tmp_path, good_hash, store.add(model), store)
    assert ms.current(5) == (model, good_hash)
    # a corrupted cache file is not used: re-fetched (and checked) from IPFS
    (tmp_path / "models" / f"{good_hash.hex()}.bin").write_bytes(other)
    assert ms.cached(good_hash) is None
    assert ms.current(5) == (model, good_hash)


# ------------------------------------------------------------------------------ gossip membership


class FakeLedger:
    def member_keys(self):
        return {p.address: RECIPIENTS[p.address] for p in PEERS[:3]}

    def auditors(self):
        return [SimpleNamespace(address=PEERS[3].address, enc_key=RECIPIENTS[PEERS[3].address])]


def test_membership_cache_admits_members_only_and_seals_for_auditors_too():
    cache = MembershipCache()
    cache.refresh(FakeLedger(), round=5)
    cache.set_round(5)
    v = EnvelopeValidator(federation=FEDERATION, chain_id=CHAIN_ID, is_member=cache.is_member,
                          current_round=cache.current_round)
    member, auditor, outsider = PEERS[1], PEERS[3], PEERS[5]
    assert v.check(_envelope(member, b"\1" * 32).to_bytes()).accepted
    assert v.check(_envelope(auditor, b"\1" * 32).to_bytes()).reason is DropReason.NON_MEMBER  # reads, never sends
    assert v.check(_envelope(outsider, b"\1" * 32).to_bytes()).reason is DropReason.NON_MEMBER
    assert v.check(_envelope(member, b"\1" * 32, round_=3).to_bytes()).reason is DropReason.WRONG_ROUND  # late
    assert set(cache.recipients()) == {p.address for p in PEERS[:4]}  # sealed for members + auditor


def test_blob_chunks_are_bound_to_round_federation_chain_and_a_member_sender():
    cache = MembershipCache()
    cache.refresh(FakeLedger(), round=5)
    cache.set_round(5)
    v = EnvelopeValidator(federation=FEDERATION, chain_id=CHAIN_ID, is_member=cache.is_member,
                          current_round=cache.current_round)
    blob = os.urandom(3000)
    member, outsider = PEERS[1], PEERS[5]

    def chunk_of(account, **kw):
        env = Envelope.create(account, federation=kw.get("federation", FEDERATION),
                              chain_id=kw.get("chain_id", CHAIN_ID), round=kw.get("round", 5),
                              update_hash=b"\2" * 32, cid="bafkreix", wrapped_keys=b"",
                              blob_sha256=hashlib.sha256(blob).digest(), blob_size=len(blob), timestamp=1)
        return split_blob(account, env, blob, chunk_size=1000)[1]

    chunk = chunk_of(member)
    assert v.check(chunk.to_bytes()).accepted
    for field, value in [("round", 6), ("chain_id", 1), ("federation", OTHER_FEDERATION), ("sender", PEERS[2].address)]:
        moved = dataclasses.replace(chunk, **{field: value})  # replayed under another context, old signature
        expected = DropReason.WRONG_FEDERATION if field in ("chain_id", "federation") else DropReason.FORGED
        assert v.check(moved.to_bytes()).reason is expected, field
    assert v.check(chunk_of(member, chain_id=1).to_bytes()).reason is DropReason.WRONG_FEDERATION
    assert v.check(chunk_of(member, round=9).to_bytes()).reason is DropReason.WRONG_ROUND
    assert v.check(chunk_of(outsider).to_bytes()).reason is DropReason.NON_MEMBER


def test_a_member_admitted_with_an_unusable_key_cannot_halt_sealing():
    """An applicant hands the convener an all-zero (or other low-order) X25519 key; the contract accepts any
    bytes32 for a member. Honest peers must still be able to seal for everyone else."""

    class BadKeyLedger(FakeLedger):
        def member_keys(self):
            return {**super().member_keys(), PEERS[4].address: bytes(32), PEERS[5].address: b"\x01" + bytes(31)}

    cache = MembershipCache()
    cache.refresh(BadKeyLedger(), round=5)
    assert cache.is_member(PEERS[4].address) and cache.is_member(PEERS[5].address)  # still members
    recipients = cache.recipients()
    assert set(recipients) == {p.address for p in PEERS[:4]}
    with pytest.raises(ValueError, match="invalid X25519"):  # what every peer did before: no commit, ever
        seal(b"update", {**recipients, PEERS[4].address: bytes(32)}, federation=FEDERATION, round=5,
             sender=ME.address)
    sealed = seal(b"update", recipients, federation=FEDERATION, round=5, sender=PEERS[1].address)
    assert _my_unseal(sealed, PEERS[1].address, 5) == b"update"
