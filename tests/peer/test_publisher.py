"""Background IPFS adds (peer.loop.publisher) and unsealing on arrival (peer.loop.unseal_ahead), without a network."""
from __future__ import annotations

import hashlib
import io
import json
import os
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from consensus.commitment import Commitment
from ledger_tools.blobstore import BlobStoreUnavailable, InMemoryBlobStore, unixfs_cid
from peer.crypto.seal import seal, unseal
from peer.loop.collect import collect_updates
from peer.loop.log import NodeLog
from peer.loop.publisher import Publisher
from peer.loop.unseal_ahead import UnsealAhead

FED = "0x" + "ab" * 20
ME, OTHER = "0x" + "11" * 20, "0x" + "22" * 20


def _log() -> tuple[NodeLog, io.StringIO]:
    out = io.StringIO()
    return NodeLog(ME, "t", json_mode=True, stream=out), out


def _events(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines()]


class FlakyStore(InMemoryBlobStore):
    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    def add(self, data: bytes, *, expected_cid: str | None = None) -> str:
        if self.failures:
            self.failures -= 1
            raise BlobStoreUnavailable("node down")
        return super().add(data, expected_cid=expected_cid)


def test_adds_in_the_background_under_the_local_cid_and_retries_a_node_that_is_down():
    store, (nlog, out) = FlakyStore(failures=2), _log()
    pub = Publisher(store, nlog, base_delay=0.01)
    blob = os.urandom(600_000)  # several UnixFS chunks: a DAG-PB CID
    job = pub.submit(1, "update", blob, unixfs_cid(blob))
    assert pub.drain(10)
    assert job.done is not None and job.failed is None and store.has(job.cid)
    retries = [e for e in _events(out) if e["phase"] == "retry"]
    assert len(retries) == 2 and all("ipfs add update" in e["message"] for e in retries)
    assert job.load is None, "a finished job keeps no bytes alive"
    pub.close()


def test_a_cid_the_store_does_not_confirm_is_an_error_not_retried():
    store, (nlog, out) = InMemoryBlobStore(), _log()
    pub = Publisher(store, nlog)
    job = pub.submit(1, "model", b"x" * 1000, unixfs_cid(b"y" * 1000))
    assert pub.drain(10)
    assert job.failed and not store.has(job.cid)
    assert [e["event"] for e in _events(out) if e["level"] == "error"] == ["mismatch"]


def test_close_reports_adds_left_for_the_next_start():
    store, (nlog, out) = FlakyStore(failures=10**6), _log()
    pub = Publisher(store, nlog, base_delay=0.01, deadline_of=lambda r: 0.0)
    pub.submit(3, "rewards", b"tree", unixfs_cid(b"tree"))
    assert not pub.close(timeout=0.2)
    events = _events(out)
    assert any(e["event"] == "late" for e in events), "past the vote deadline: said once"
    assert any(e["event"] == "unfinished" and e["round"] == 3 for e in events)


class PacedGossip:
    def __init__(self) -> None:
        self.blobs: dict[tuple[str, bytes], bytes] = {}

    def envelopes(self, round: int):
        return [type("Env", (), {"sender": s, "update_hash": h})() for s, h in self.blobs]

    def has_blob(self, update_hash: bytes, *, sender: str | None = None) -> bool:
        return (sender, update_hash) in self.blobs

    def blob(self, update_hash: bytes, *, sender: str | None = None) -> bytes | None:
        return self.blobs.get((sender, update_hash))


def _unsealer(gossip, poll: float) -> tuple[bytes, bytes, bytes, UnsealAhead]:
    """(OTHER's update of round 5, its hash, its blob sealed for ME, a started UnsealAhead for ME over `gossip`)."""
    key = X25519PrivateKey.generate()
    update = os.urandom(300_000)
    sealed = seal(update, {ME: key.public_key()}, federation=FED, round=5, sender=OTHER)
    ahead = UnsealAhead(5, gossip, lambda b, s, r: unseal(b, ME, key, federation=FED, round=r, sender=s), me=ME,
                        poll=poll).start()
    return update, hashlib.sha256(update).digest(), sealed, ahead


def test_unseal_ahead_hands_over_only_what_the_commitment_names():
    gossip = PacedGossip()
    update, h, sealed, ahead = _unsealer(gossip, poll=0.01)
    try:
        gossip.blobs[(OTHER, h)] = sealed
        other_hash = hashlib.sha256(b"another update").digest()
        # an equivocating commitment (another hash than the gossiped copy) gets nothing
        assert ahead.take(Commitment(OTHER, other_hash, "cid", 1, round=5), timeout=2) is None
        for _ in range(200):
            if ahead.started():
                break
            time.sleep(0.01)
        assert ahead.take(Commitment(OTHER, h, "cid", 1, round=5), timeout=5) == update
        assert ahead.take(Commitment(OTHER, h, "cid", 1, round=5)) is None, "handed over once"
    finally:
        ahead.close()


class NotifyingGossip(PacedGossip):
    """Wakes `wait_for` callers when a blob lands, as `GossipStore` does."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def arrive(self, sender: str, update_hash: bytes, blob: bytes) -> None:
        with self.changed:
            self.blobs[(sender, update_hash)] = blob
            self.changed.notify_all()

    def wait_for(self, predicate, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


def test_unseal_ahead_opens_a_blob_when_the_node_says_it_arrived_not_at_the_next_poll():
    """Polled every 10 ms, the arrivals of a short exchange were opened in batches and the last ones after it."""
    gossip = NotifyingGossip()
    update, h, sealed, ahead = _unsealer(gossip, poll=600)
    try:
        time.sleep(0.05)  # the watcher has looked once and now waits (for up to the 600 s poll)
        gossip.arrive(OTHER, h, sealed)
        for _ in range(1000):  # opened at once: without the node's wake-up, not before the 600 s poll
            if ahead.started():
                break
            time.sleep(0.01)
        assert ahead.started() == 1
        assert ahead.take(Commitment(OTHER, h, "cid", 1, round=5), timeout=5) == update
    finally:
        ahead.close()
        with gossip.changed:
            gossip.changed.notify_all()


def test_collect_takes_a_pre_opened_update_as_a_gossip_copy_and_fetches_the_rest():
    blobs = {a: os.urandom(1000) for a in (OTHER, "0x" + "33" * 20)}
    commits = [Commitment(a, hashlib.sha256(b).digest(), "bafy-none", 1, round=2) for a, b in blobs.items()]
    early = {OTHER: blobs[OTHER]}
    updates, report = collect_updates(2, commits, unseal=lambda b, s, r: b, blobstore=InMemoryBlobStore(),
                                      unsealed=lambda c: early.get(c.member))
    assert updates[0].update == blobs[OTHER] and report.source[OTHER] == "gossip"
    assert updates[1].update is None and "0x" + "33" * 20 in report.rejected


def test_resume_re_adds_the_results_of_a_peer_killed_between_its_vote_and_their_adds(tmp_path):
    """`send_vote` queues the model's and reward tree's adds only once the vote is out; a peer killed in between
    left both on disk (model cache, rounds/<r>/rewards.json) and their CIDs in its state: the restart adds them."""
    from types import SimpleNamespace

    from peer.loop.model_store import ModelStore
    from peer.loop.publisher import resume
    from peer.loop.state import PeerState

    store, (nlog, _out) = InMemoryBlobStore(), _log()
    state = PeerState(tmp_path / "state", federation=FED, address=ME)
    models = ModelStore(tmp_path / "models", ledger=None, blobstore=store, retry=None, nlog=nlog)
    model, tree = os.urandom(600_000), b'{"format": "standard-v1"}'
    rec = state.record(4)
    state.write_artefact(4, "rewards.json", tree)  # what send_vote persists before the vote ...
    state.update(rec, aggregate_hash=models.cache(model).hex(), aggregate_cid=unixfs_cid(model),
                 rewards_cid=unixfs_cid(tree))  # ... and what _vote records before sending it
    ctx = SimpleNamespace(state=state, blobstore=store, models=models, nlog=nlog)
    pub = Publisher(store, nlog)
    assert resume(pub, ctx) == 2
    assert pub.drain(10)
    assert store.has(unixfs_cid(model)) and store.has(unixfs_cid(tree))
    assert resume(pub, ctx) == 0, "what the node already holds is not added again"
    pub.close()


def test_a_held_add_waits_for_its_release_or_its_hold_and_lets_others_pass():
    """The own sealed update's add waits for the peer's vote (`release`), at most its hold; unheld adds go first."""
    store, (nlog, _out) = InMemoryBlobStore(), _log()
    pub = Publisher(store, nlog)
    held = pub.submit(7, "update", b"sealed update", unixfs_cid(b"sealed update"), hold=600)
    other = pub.submit(6, "rewards", b"tree", unixfs_cid(b"tree"))
    for _ in range(500):
        if other.done is not None:
            break
        time.sleep(0.01)
    assert other.done is not None, "an add that is not held is not queued behind a held one"
    assert held.done is None and not store.has(held.cid)
    pub.release(7)
    assert pub.drain(10) and store.has(held.cid)

    expiring = pub.submit(8, "update", b"next update", unixfs_cid(b"next update"), hold=0.05)
    assert pub.drain(10) and expiring.done is not None, "never released (no vote): added once the hold is over"
    pub.close()


def test_the_own_update_hold_leaves_time_before_members_turn_to_ipfs():
    from peer.loop.publisher import own_update_hold

    assert own_update_hold(3.0) == 1.0
    assert own_update_hold(0.6) == pytest.approx(0.2)
    assert own_update_hold(0.0) == 0.0, "gossip_wait 0 (IPFS only): not held at all"
