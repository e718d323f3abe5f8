"""The receiving side of the bulk path: on each accepted envelope naming a large blob, fetch it in the background.

Runs on the gossip node's trio thread. Providers, in order: the libp2p peer that published the envelope (the
committer's own node, normally), then every other topic peer (any member that already fetched and verified
it). A provider that does not hold it yet, or whose stream fails, is asked again after a backoff; one that
sends another size or other bytes than the signed envelope names is never asked again for this blob. After
`give_up` seconds the collector's IPFS fallback takes over. At most `concurrency` fetches run at once.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio
from libp2p.peer.id import ID

from peer.net import bulk
from peer.net.bulk import BlobKey, BulkError, BulkMismatch
from peer.net.envelope import Envelope
from peer.net.gossip_store import GossipStore

log = logging.getLogger("fedledger.gossip")

#: A provider slower than this (bytes per second, plus a fixed allowance) is left for the next pass.
MIN_RATE = 1e6
FIXED_ALLOWANCE = 15.0


class BulkFetcher:
    def __init__(self, nursery: trio.Nursery, host, store: GossipStore,
                 topic_peers: Callable[[], Awaitable[list[str]]], own_id: str, concurrency: int, give_up: float,
                 peer_count: Callable[[], int]) -> None:
        self.nursery, self.host, self.store = nursery, host, store
        self.topic_peers, self.own_id, self.give_up, self.peer_count = topic_peers, own_id, give_up, peer_count
        self.limit = trio.CapacityLimiter(max(1, concurrency))
        self.fetching: set[BlobKey] = set()

    def start(self, envelope: Envelope, origin: str | None) -> None:
        """Fetch the blob `envelope` names unless it is held or already being fetched (sync: trio thread)."""
        key = BlobKey(bytes.fromhex(envelope.sender[2:]), envelope.update_hash, envelope.blob_sha256)
        if key in self.fetching or self.store.lookup(key) is not None:
            return
        self.fetching.add(key)
        self.nursery.start_soon(self._fetch, envelope, key, origin)

    async def _fetch(self, envelope: Envelope, key: BlobKey, origin: str | None) -> None:
        deadline = trio.current_time() + self.give_up
        per_try = FIXED_ALLOWANCE + envelope.blob_size / MIN_RATE
        bad: set[str] = {self.own_id}
        delay = 0.02  # the publisher may gossip its envelope a moment before its blob is spooled
        try:
            async with self.limit:
                while trio.current_time() < deadline:
                    first = [origin] if origin else []
                    for provider in dict.fromkeys(first + await self.topic_peers()):
                        if provider not in bad and await self._fetch_from(provider, envelope, key, per_try, bad):
                            return
                    await trio.sleep(delay)
                    delay = min(2.0, delay * 2)
                log.warning("gossip: no member served the %d-byte blob of %s (round %d) within %.0f s; IPFS has it",
                            envelope.blob_size, envelope.sender, envelope.round, self.give_up,
                            extra={"event": "bulk_failed", "peers": self.peer_count()})
        finally:
            self.fetching.discard(key)

    async def _fetch_from(self, provider: str, envelope: Envelope, key: BlobKey, timeout: float,
                          bad: set[str]) -> bool:
        peer_id = ID.from_base58(provider)
        final = self.store.spool.path(key)
        dest = final.with_suffix(".fetch")
        try:
            fetched = await bulk.fetch(lambda: self.host.new_stream(peer_id, [bulk.PROTOCOL]), key,
                                       envelope.blob_size, dest, timeout)
        except BulkMismatch as exc:
            bad.add(provider)
            log.warning("gossip: %s served a wrong copy of %s's blob (round %d): %s", provider, envelope.sender,
                        envelope.round, exc, extra={"event": "bulk_mismatch", "peers": self.peer_count()})
            return False
        except BulkError as exc:
            log.info("gossip: blob of %s from %s: %s", envelope.sender, provider, exc,
                     extra={"event": "bulk_retry", "peers": self.peer_count()})
            return False
        if fetched:
            dest.replace(final)
            self.store.add_fetched(envelope, final)
        return fetched
