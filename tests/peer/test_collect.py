"""Collector (`peer.loop.collect`): concurrent fetch + unseal, gossip first, IPFS for what gossip lacks or got wrong."""
from __future__ import annotations

import hashlib
import threading
import time

from consensus import Commitment
from ledger_tools.blobstore import InMemoryBlobStore
from peer.loop.collect import collect_updates


def _fake_seal(update: bytes, sender: str, round: int) -> bytes:
    return f"{sender}|{round}|".encode() + update[::-1]


def _fake_unseal(sealed: bytes, sender: str, round: int) -> bytes:
    head = f"{sender}|{round}|".encode()
    if not sealed.startswith(head):
        raise ValueError("sealed for another sender or round")
    return sealed[len(head):][::-1]


class SlowStore(InMemoryBlobStore):
    """An in-memory store whose `cat` takes `delay` seconds and records how many ran at once."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay, self.running, self.most, self.calls = delay, 0, 0, 0
        self._lock = threading.Lock()

    def cat(self, cid, expected_sha256=None, *, max_bytes=None):
        with self._lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self.delay)
            return super().cat(cid, expected_sha256, max_bytes=max_bytes)
        finally:
            with self._lock:
                self.running -= 1


class FakeGossip:
    """The part of `peer.net.gossip.GossipNode` the collector uses; blobs keyed by committed update hash."""

    def __init__(self, blobs: dict[bytes, bytes] | None = None, dead: bool = False) -> None:
        self.blobs, self.dead = dict(blobs or {}), dead

    def envelopes(self, round):
        if self.dead:
            raise RuntimeError("gossip node is gone")
        return []

    def blob(self, update_hash, blob_sha256=None, *, sender=None):
        if self.dead:
            raise RuntimeError("gossip node is gone")
        return self.blobs.get(update_hash)

    def has_blob(self, update_hash, *, sender=None):
        return self.blob(update_hash, sender=sender) is not None

    def wait_for(self, predicate, timeout):
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True


def _round(n: int, store):
    updates = {f"0x{i:040x}": bytes([i]) * 1000 for i in range(n)}
    commits = [Commitment(p, hashlib.sha256(u).digest(), store.add(_fake_seal(u, p, 1)), 10, round=1)
               for p, u in updates.items()]
    return updates, commits


def test_ipfs_fetches_run_concurrently():
    store = SlowStore(delay=0.2)
    updates, commits = _round(8, store)
    started = time.perf_counter()
    got, report = collect_updates(1, commits, unseal=_fake_unseal, blobstore=store, threads=4)
    elapsed = time.perf_counter() - started
    assert [u.update for u in got] == list(updates.values())
    assert report.from_ipfs == 8 and not report.rejected
    assert store.most == 4
    assert elapsed < 0.2 * 8 * 0.6  # ~2 waves of 4, not 8 sequential fetches


def test_gossip_first_ipfs_only_for_missing_and_bad_copies():
    store = SlowStore(delay=0.0)
    updates, commits = _round(5, store)
    peers = list(updates)
    copies = {c.update_hash: _fake_seal(updates[c.member], c.member, 1) for c in commits[:3]}
    copies[commits[2].update_hash] = _fake_seal(updates[peers[2]], peers[2], 9)  # sealed for another round
    got, report = collect_updates(1, commits, unseal=_fake_unseal, blobstore=store, gossip=FakeGossip(copies),
                                  gossip_wait=0.2)
    assert [u.update for u in got] == list(updates.values())
    assert [report.source[p] for p in peers] == ["gossip", "gossip", "ipfs", "ipfs", "ipfs"]
    assert store.calls == 3


def test_late_gossip_copy_is_used_before_the_wait_ends():
    store = SlowStore(delay=0.0)
    updates, commits = _round(3, store)
    gossip = FakeGossip()

    def arrive_late():
        time.sleep(0.1)
        for c in commits:
            gossip.blobs[c.update_hash] = _fake_seal(updates[c.member], c.member, 1)

    threading.Thread(target=arrive_late).start()
    got, report = collect_updates(1, commits, unseal=_fake_unseal, blobstore=store, gossip=gossip, gossip_wait=5)
    assert report.from_gossip == 3 and store.calls == 0
    assert report.seconds < 2


def test_dead_gossip_missing_blob_and_no_store_are_rejections_not_errors():
    store = SlowStore(delay=0.0)
    updates, commits = _round(3, store)
    commits[1] = Commitment(commits[1].member, commits[1].update_hash, "bafkreimissingmissing", 10, round=1)
    got, report = collect_updates(1, commits, unseal=_fake_unseal, blobstore=store, gossip=FakeGossip(dead=True),
                                  gossip_wait=0.1,
                                  local={commits[0].member: updates[commits[0].member]})
    assert report.source == {commits[0].member: "local", commits[2].member: "ipfs"}
    assert got[1].update is None and "IPFS" in report.rejected[commits[1].member]
    got, report = collect_updates(1, commits, unseal=_fake_unseal)
    assert all(u.update is None for u in got) and len(report.rejected) == 3


def test_node_stopping_during_a_fetch_propagates_instead_of_excluding():
    import pytest

    from peer.loop.retry import Stopped

    class StoppingStore(InMemoryBlobStore):
        def cat(self, cid, expected_sha256=None, *, max_bytes=None):
            raise Stopped()

    store = StoppingStore()
    _, commits = _round(3, store)
    with pytest.raises(Stopped):
        collect_updates(1, commits, unseal=_fake_unseal, blobstore=store)


def test_a_blob_one_byte_over_the_cap_is_refused_never_loaded():
    """The collector passes its spec-derived cap to every IPFS fetch (issue 12, deliverable 2): a sealed blob
    one byte over it is rejected as `blob-too-large` by the store, which stops reading at the cap; a blob of
    exactly the cap is used. The same cap reaches the store through the node's retrying `ReachableBlobStore`."""
    from ledger_tools.blobstore import BlobTooLarge
    from peer.loop.log import NodeLog
    from peer.loop.retry import ReachableBlobStore, Retrier

    class CountingStore(InMemoryBlobStore):
        """Records the cap of every `cat`; never returns more than it."""

        caps: list = []

        def cat(self, cid, expected_sha256=None, *, max_bytes=None):
            self.caps.append(max_bytes)
            return super().cat(cid, expected_sha256, max_bytes=max_bytes)

    store = CountingStore()
    fits, over = bytes([1]) * 1000, bytes([2]) * 1001
    commits = [Commitment(p, hashlib.sha256(u).digest(), store.add(_fake_seal(u, p, 1)), 10, round=1)
               for p, u in (("0x" + "01" * 20, fits), ("0x" + "02" * 20, over))]
    cap = len(_fake_seal(fits, "0x" + "01" * 20, 1))
    retry = Retrier(NodeLog("0x" + "aa" * 20, "t"), sleep=lambda s: None, should_stop=lambda: False)
    got, report = collect_updates(1, commits, unseal=_fake_unseal, blobstore=ReachableBlobStore(store, retry),
                                  max_blob_bytes=cap)
    assert got[0].update == fits and got[1].update is None
    assert "blob-too-large" in report.rejected["0x" + "02" * 20]
    assert str(cap) in report.rejected["0x" + "02" * 20]
    assert store.caps == [cap, cap]
    import pytest

    with pytest.raises(BlobTooLarge):
        ReachableBlobStore(store, retry).cat(commits[1].cid, max_bytes=cap)
