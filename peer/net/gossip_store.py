"""What a gossip node accepted: envelopes, reassembled blobs, equivocation evidence, counters.

Written only by the node's trio thread (through the topic validator, `admit`), read from any thread; every
access holds the store's lock, and a condition wakes `wait_for` callers whenever a message is accepted.
A message is admitted when the federation's `EnvelopeValidator` accepts it, it is not a duplicate (by signed
content) and its sender is under the per-round caps; nothing a remote peer sends can raise out of `admit`.
Complete, verified blobs (reassembled from chunks, our own, or fetched over the bulk stream protocol,
`peer.net.bulk`) live in a `BlobSpool` on disk, not in memory: the store keeps only their paths.
"""
from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path

from eth_utils import to_checksum_address

from peer.net.admission import DropReason, EnvelopeValidator
from peer.net.bulk import BlobKey, BlobSpool
from peer.net.chunking import BlobAssembly
from peer.net.envelope import BlobChunk, Envelope, EnvelopeError

log = logging.getLogger("fedledger.gossip")


@dataclass(frozen=True)
class GossipStats:
    received: int = 0  # accepted messages from other peers (envelopes + chunks)
    published: int = 0  # messages this node published (envelopes + chunks)
    blobs_completed: int = 0
    blobs_failed: int = 0  # all chunks arrived, signed by the sender, but the bytes miss blob_sha256
    dropped_forged: int = 0
    dropped_non_member: int = 0
    dropped_wrong_round: int = 0
    dropped_wrong_federation: int = 0
    dropped_duplicate: int = 0
    dropped_oversized: int = 0
    dropped_malformed: int = 0
    dropped_limit: int = 0  # per-sender caps on distinct envelopes / blobs per round
    dropped_validator_error: int = 0  # is_member / current_round raised


@dataclass(frozen=True)
class Equivocation:
    """Evidence: ``sender`` signed envelopes with different update hashes for the same ``round``."""

    sender: str
    round: int
    envelopes: tuple[Envelope, ...]


class _RoundStore:
    """Everything accepted from gossip; guarded by the node's lock (written by the trio thread only)."""

    def __init__(self) -> None:
        self.seen: dict[int, set[bytes]] = defaultdict(set)  # round -> signed-body ids
        self.envelopes: dict[int, dict[str, list[Envelope]]] = defaultdict(dict)
        self.assemblies: dict[tuple[str, bytes, bytes], BlobAssembly] = {}
        self.assemblies_per_sender: dict[tuple[str, int], int] = defaultdict(int)
        # (sender, update_hash) -> blob sha256 -> (round, spool path): keyed by the signed sender too, so a member
        # cannot shadow another member's blob by gossiping garbage under that member's update hash.
        self.blobs: dict[tuple[str, bytes], dict[bytes, tuple[int, Path]]] = defaultdict(dict)


class GossipStore:
    """Accepted gossip state of one node (see module docstring)."""

    def __init__(self, validator: EnvelopeValidator, *, max_envelopes_per_sender_round: int,
                 max_blobs_per_sender_round: int, spool: BlobSpool | None = None,
                 on_envelope: Callable[[Envelope, str | None], None] | None = None) -> None:
        self.validator = validator
        self.spool = spool or BlobSpool()
        # called (outside the lock, on the admitting thread) with each newly accepted envelope of another
        # member and the libp2p peer id that published it: the node starts the bulk fetch from there.
        self.on_envelope = on_envelope
        self.max_envelopes_per_sender_round = max_envelopes_per_sender_round
        self.max_blobs_per_sender_round = max_blobs_per_sender_round
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._store = _RoundStore()
        self._counts: dict[str, int] = {f.name: 0 for f in fields(GossipStats)}

    def count_published(self) -> None:
        with self._lock:
            self._counts["published"] += 1

    def wake(self) -> None:
        """Wake every `wait_for` caller (the node stopped)."""
        with self._changed:
            self._changed.notify_all()

    def envelopes(self, round: int) -> list[Envelope]:
        """Accepted envelopes of ``round`` (ours included), ordered by sender then arrival."""
        with self._lock:
            by_sender = self._store.envelopes.get(round, {})
            return [env for sender in sorted(by_sender) for env in by_sender[sender]]

    def blob(self, update_hash: bytes, blob_sha256: bytes | None = None, *, sender: str | None = None) -> bytes | None:
        """A complete sealed blob with this update hash (and blob sha256, if given), verified; else None.

        With `sender`, only blobs that member signed for (chunks, or the envelope a bulk fetch was checked
        against) count (what a collector wants: the blob of the member that committed this hash); without it,
        any sender's. Read from the spool at each call: the caller holds the only in-memory copy."""
        path = self._blob_path(update_hash, blob_sha256, sender)
        return None if path is None else BlobSpool.read(path)

    def has_blob(self, update_hash: bytes, *, sender: str | None = None) -> bool:
        """Whether `blob(update_hash, sender=sender)` would find one, without reading it."""
        return self._blob_path(update_hash, None, sender) is not None

    def lookup(self, key: BlobKey) -> Path | None:
        """Spool path of the verified blob `key` names (what the bulk server may hand out), else None."""
        return self._blob_path(key.update_hash, key.blob_sha256, to_checksum_address(key.sender))

    def add_own(self, envelope: Envelope, blob: bytes) -> None:
        """Hold our own blob so the bulk server can serve it; EnvelopeError unless it is the one `envelope` names."""
        if len(blob) != envelope.blob_size or hashlib.sha256(blob).digest() != envelope.blob_sha256:
            raise EnvelopeError("sealed blob does not match the envelope's blob_sha256 / blob_size")
        path = self.spool.write(_key(envelope), blob)
        with self._changed:
            self._store.blobs[(envelope.sender, envelope.update_hash)][envelope.blob_sha256] = (envelope.round, path)
            self._counts["blobs_completed"] += 1
            self._changed.notify_all()

    def add_fetched(self, envelope: Envelope, path: Path) -> None:
        """Record a bulk-fetched blob that `peer.net.bulk.fetch` verified against `envelope`."""
        with self._changed:
            if envelope.round not in self._store.envelopes:
                path.unlink(missing_ok=True)  # the round was forgotten while the fetch ran
                return
            self._store.blobs[(envelope.sender, envelope.update_hash)][envelope.blob_sha256] = (envelope.round, path)
            self._counts["blobs_completed"] += 1
            self._changed.notify_all()

    def _blob_path(self, update_hash: bytes, blob_sha256: bytes | None, sender: str | None) -> Path | None:
        with self._lock:
            if sender is not None:
                candidates = self._store.blobs.get((to_checksum_address(sender), update_hash), {})
            else:
                candidates = {}
                for (_, h), by_sha in self._store.blobs.items():
                    if h == update_hash:
                        candidates.update(by_sha)
            if blob_sha256 is not None:
                found = candidates.get(blob_sha256)
                return found[1] if found else None
            return next(iter(candidates.values()))[1] if candidates else None

    def close(self) -> None:
        """Remove the spool (the node stopped)."""
        self.spool.close()

    def equivocations(self) -> list[Equivocation]:
        with self._lock:
            out = []
            for round_, by_sender in sorted(self._store.envelopes.items()):
                for sender, envs in sorted(by_sender.items()):
                    if len({e.update_hash for e in envs}) > 1:
                        out.append(Equivocation(sender, round_, tuple(envs)))
            return out

    @property
    def stats(self) -> GossipStats:
        with self._lock:
            return GossipStats(**self._counts)

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` is true (re-checked whenever a message is accepted); False on timeout.

        The predicate is called with the store's lock released, so it may use ``envelopes``/``blob``/``stats``.
        """
        deadline = time.monotonic() + timeout
        while True:
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._changed:
                self._changed.wait(min(remaining, 0.5))

    def forget_rounds_before(self, round: int) -> None:
        """Drop state of rounds < ``round`` (the caller's memory bound; the round window rejects them anyway)."""
        with self._lock:
            store = self._store
            for r in [r for r in store.seen if r < round]:
                del store.seen[r]
            for r in [r for r in store.envelopes if r < round]:
                del store.envelopes[r]
            for key in [k for k, a in store.assemblies.items() if a.round < round]:
                del store.assemblies[key]
            for key in [k for k in store.assemblies_per_sender if k[1] < round]:
                del store.assemblies_per_sender[key]
            for h in list(store.blobs):
                for sha, (r, path) in list(store.blobs[h].items()):
                    if r < round:
                        path.unlink(missing_ok=True)
                        del store.blobs[h][sha]
                if not store.blobs[h]:
                    del store.blobs[h]

    def count_drop(self, reason: DropReason) -> None:
        with self._lock:
            self._counts[f"dropped_{reason.value}"] += 1

    def admit(self, data: bytes, own: bool, origin: str | None = None) -> bool:
        """Validate and record one message; True = deliver and forward (see module docstring). `origin`: the
        libp2p peer id that published it (a provider to ask for the blob an envelope names)."""
        verdict = self.validator.check(data)
        if not verdict.accepted:
            assert verdict.reason is not None
            log.debug("dropped gossip message: %s (%s)", verdict.reason.value, verdict.detail)
            self.count_drop(verdict.reason)
            return False
        message = verdict.message
        body_id = message.body_id()
        with self._changed:
            store = self._store
            seen = store.seen[message.round]
            if body_id in seen:
                if own:  # our own re-publish, for peers that joined late
                    return True
                self._counts["dropped_duplicate"] += 1
                return False
            if isinstance(message, Envelope):
                accepted = self._admit_envelope(message, own)
            else:
                accepted = self._admit_chunk(message, own)
            if not accepted:
                self._counts["dropped_limit"] += 1
                return False
            seen.add(body_id)
            if not own:
                self._counts["received"] += 1
            self._changed.notify_all()
        if not own and isinstance(message, Envelope) and self.on_envelope is not None:
            self.on_envelope(message, origin)
        return True

    def _admit_envelope(self, envelope: Envelope, own: bool) -> bool:
        known = self._store.envelopes[envelope.round].setdefault(envelope.sender, [])
        if len(known) >= self.max_envelopes_per_sender_round and not own:
            return False
        if any(e.update_hash != envelope.update_hash for e in known):
            log.warning("equivocation: %s sent two update hashes for round %d", envelope.sender, envelope.round)
        known.append(envelope)
        return True

    def _admit_chunk(self, chunk: BlobChunk, own: bool) -> bool:
        store = self._store
        key = (chunk.sender, chunk.update_hash, chunk.blob_sha256)
        assembly = store.assemblies.get(key)
        if assembly is None:
            per_sender = (chunk.sender, chunk.round)
            if store.assemblies_per_sender[per_sender] >= self.max_blobs_per_sender_round and not own:
                return False
            store.assemblies_per_sender[per_sender] += 1
            assembly = store.assemblies[key] = BlobAssembly(chunk)
        if not assembly.add(chunk):
            return False
        if assembly.blob is not None:
            path = self.spool.write(_key(chunk), assembly.blob)
            assembly.blob = b""  # complete: later chunks are refused, the bytes live in the spool
            store.blobs[(chunk.sender, chunk.update_hash)][chunk.blob_sha256] = (chunk.round, path)
            self._counts["blobs_completed"] += 1
        elif assembly.failed:
            self._counts["blobs_failed"] += 1
            log.warning("blob from %s (round %d) does not match its signed sha256", chunk.sender, chunk.round)
        return True


def _key(message: Envelope | BlobChunk) -> BlobKey:
    return BlobKey(bytes.fromhex(message.sender[2:]), message.update_hash, message.blob_sha256)
