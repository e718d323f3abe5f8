"""Federation gossip over py-libp2p GossipSub, behind a synchronous API.

py-libp2p is trio-only, so a ``GossipNode`` runs its host, Pubsub and GossipSub router in one thread of
its own under ``trio.run``; the (synchronous) peer code calls in with ``trio.from_thread``. One topic per
federation carries signed envelopes (``peer.net.envelope``) and the chunks of small sealed blobs (at most
``bulk_threshold`` bytes). A larger blob moves over the bulk stream protocol (``peer.net.bulk``): receivers of
its envelope fetch it from the publisher or any member holding it (``peer.net.bulk_fetch``), verified, to disk.

Every inbound message passes the topic validator before libp2p delivers or forwards it: the federation's
``EnvelopeValidator`` rules (size, format, federation, round window, signature, membership), then
de-duplication by signed content and per-sender limits. A rejected message is counted in ``stats`` and
never forwarded; nothing a remote peer sends can raise out of the validator. Two different envelopes
(different update hash) from one sender for one round are both kept as equivocation evidence
(``peer.net.gossip_store``). Addresses: ``peer.net.gossip_addr`` (listen vs announce). The bootstrap peers,
and the members' addresses the round loop finds on the ledger (``peer.net.discovery``, handed over with
``dial_discovered``), are dialled and re-dialled by ``peer.net.gossip_dial``.
Outbound messages are paced below GossipSub's spam limit (``peer.net.gossip_pacing``).
"""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence

import multiaddr
import trio
from eth_account.signers.local import LocalAccount
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, GossipSub
from libp2p.pubsub.pubsub import Pubsub
from libp2p.tools.anyio_service import background_trio_service

from peer.errors import PeerError
from peer.net import bulk
from peer.net.admission import DropReason, EnvelopeValidator
from peer.net.bulk import BlobSpool
from peer.net.bulk_fetch import BulkFetcher
from peer.net.chunking import DEFAULT_CHUNK_SIZE, split_blob
from peer.net.envelope import Envelope
from peer.net.gossip_addr import DEFAULT_LISTEN, announced, check_announce, check_listen, check_pair, with_peer_id
from peer.net.gossip_dial import DialPolicy, DialTargets, keep_connected
from peer.net.gossip_pacing import PublishPacer
from peer.net.gossip_store import Equivocation, GossipStats, GossipStore

log = logging.getLogger("fedledger.gossip")


class GossipError(PeerError, RuntimeError):
    """The gossip node could not start, connect or publish."""


class GossipNode:
    """One member's endpoint in its federation's gossip topic (see module docstring)."""

    def __init__(
        self,
        *,
        validator: EnvelopeValidator,
        listen: str = DEFAULT_LISTEN,
        announce: str | None = None,
        topic: str | None = None,
        bootstrap: Sequence[str] = (),
        seed: bytes | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        rate_limit: float = 10.0,
        max_publish_rate: float = 8.0,
        heartbeat_interval: int = 1,
        max_envelopes_per_sender_round: int = 4,
        max_blobs_per_sender_round: int = 4,
        dial_policy: DialPolicy = DialPolicy(),
        bulk_threshold: int | None = None,
        bulk_fetches: int = 4,
        bulk_give_up: float = 120.0,
        spool_dir: str | None = None,
    ) -> None:
        if seed is not None and len(seed) != 32:
            raise ValueError("seed must be 32 bytes (an Ed25519 private key seed)")
        if not 0 < max_publish_rate <= rate_limit:
            raise ValueError("max_publish_rate must be positive and at most rate_limit")
        if chunk_size + 1024 > validator.max_message_bytes:
            raise ValueError("chunk_size leaves no room for the chunk header under max_message_bytes")
        self.validator = validator
        self.topic = topic or validator.topic
        check_listen(listen)
        check_pair(listen, None if announce is None else check_announce(announce))
        self.listen, self.announce, self.bootstrap = listen, announce, list(bootstrap)
        self.chunk_size, self.rate_limit, self.max_publish_rate = chunk_size, rate_limit, max_publish_rate
        self.heartbeat_interval, self.dial_policy = heartbeat_interval, dial_policy
        # blobs above one gossip chunk take the bulk stream path (peer.net.bulk)
        self.bulk_threshold = chunk_size if bulk_threshold is None else bulk_threshold
        self.bulk_fetches, self.bulk_give_up = bulk_fetches, bulk_give_up
        self._key_pair = create_new_key_pair(seed)
        self.peer_id = ID.from_pubkey(self._key_pair.public_key)

        self.store = GossipStore(validator, max_envelopes_per_sender_round=max_envelopes_per_sender_round,
                                 max_blobs_per_sender_round=max_blobs_per_sender_round,
                                 spool=BlobSpool(spool_dir), on_envelope=self._on_envelope)
        self._fetcher: BulkFetcher | None = None
        self._lock = threading.Lock()  # guards _peer_count
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._startup_error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop_event: trio.Event | None = None
        self._host, self._pubsub = None, None  # type: tuple[object, Pubsub | None]
        self._pacer = PublishPacer(max_publish_rate)
        self._peer_count, self._warned_no_peers = 0, False
        self._targets: DialTargets | None = None
        self.multiaddr: str | None = None

    # ---------------------------------------------------------------- lifecycle (caller's thread)

    def start(self, timeout: float = 15.0) -> str:
        """Start listening; return the multiaddr others dial (announce + ``/p2p/<id>``); dials run in background."""
        if self._thread is not None:
            raise GossipError("gossip node already started")
        self._thread = threading.Thread(target=self._thread_main, name=f"gossip-{self.peer_id}", daemon=False)
        self._thread.start()
        if not self._ready.wait(timeout):
            self.stop()
            raise GossipError(f"gossip node did not start listening within {timeout} s")
        if self._startup_error is not None:
            self._thread.join(5)
            raise GossipError(f"gossip node failed to start: {self._startup_error!r}") from self._startup_error
        assert self.multiaddr is not None
        return self.multiaddr

    def stop(self, timeout: float = 10.0) -> None:
        """Close connections and join the gossip thread; idempotent."""
        thread = self._thread
        if thread is None:
            return
        if thread.is_alive() and self._token is not None and self._stop_event is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._stop_event.set, trio_token=self._token)
        thread.join(timeout)
        if thread.is_alive():
            raise GossipError(f"gossip thread did not stop within {timeout} s")
        self.store.wake()
        self.store.close()

    def __enter__(self) -> GossipNode:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- network (caller's thread)

    def connect(self, address: str, timeout: float = 10.0) -> str:
        """Dial a peer and wait until it is subscribed to our topic; returns its peer id."""
        return self._call(self._connect, address, timeout)

    def peers(self) -> list[str]:  # connected peers subscribed to this federation's topic
        return self._call(self._topic_peers)

    def dial_discovered(self, addresses: Sequence[str]) -> None:
        """Keep connected to `addresses` (members' announced multiaddrs) besides the bootstrap peers; replaces
        the previous list. Returns at once: the dials (and re-dials with backoff) run on the gossip thread."""
        if self._token is None or self._thread is None or not self._thread.is_alive():
            raise GossipError("gossip node is not running")
        try:
            trio.from_thread.run_sync(self._set_discovered, list(addresses), trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise GossipError("gossip node stopped") from exc

    @property
    def peer_count(self) -> int:
        """Connected peers subscribed to the topic, as of the last check (twice a second); 0 when stopped."""
        with self._lock:
            return self._peer_count

    def wait_for_peers(self, count: int, timeout: float) -> bool:
        """Wait until at least ``count`` peers are connected and subscribed to the topic."""
        deadline = time.monotonic() + timeout
        while len(self.peers()) < count:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def publish_envelope(self, envelope: Envelope) -> None:
        """Gossip our signed envelope. Re-publishing the same envelope (for late joiners) is allowed."""
        data = envelope.to_bytes()
        self._check_own(data)
        self._call(self._publish, [data])

    def publish_blob(self, envelope: Envelope, sealed_blob: bytes, account: LocalAccount) -> int:
        """Make ``sealed_blob`` available to the members; returns the number of gossip chunks sent.

        Above ``bulk_threshold`` bytes: 0 — the blob is held in the spool and served over the bulk stream
        protocol to whoever asks by this envelope. Otherwise it is gossiped as signed chunks bound to
        ``envelope``, paced to ``max_publish_rate`` per second.
        """
        if len(sealed_blob) > self.bulk_threshold:
            self._check_own(envelope.to_bytes())
            self.store.add_own(envelope, sealed_blob)  # checks the bytes against the envelope
            return 0
        chunks = [c.to_bytes() for c in split_blob(account, envelope, sealed_blob, self.chunk_size)]
        self._check_own(chunks[0])
        self._call(self._publish, chunks)
        return len(chunks)

    # ---------------------------------------------------------------- received state (any thread)

    def envelopes(self, round: int) -> list[Envelope]:
        """Accepted envelopes of ``round`` (ours included), ordered by sender then arrival."""
        return self.store.envelopes(round)

    def blob(self, update_hash: bytes, blob_sha256: bytes | None = None, *, sender: str | None = None) -> bytes | None:
        """A complete, verified sealed blob with this update hash (see `GossipStore.blob`); else None."""
        return self.store.blob(update_hash, blob_sha256, sender=sender)

    def has_blob(self, update_hash: bytes, *, sender: str | None = None) -> bool:
        """Whether `blob` would return one (without reading it from the spool)."""
        return self.store.has_blob(update_hash, sender=sender)

    def equivocations(self) -> list[Equivocation]:
        return self.store.equivocations()

    @property
    def stats(self) -> GossipStats:
        return self.store.stats

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        """Block until ``predicate()`` is true (re-checked whenever a message is accepted); False on timeout."""
        return self.store.wait_for(predicate, timeout)

    def forget_rounds_before(self, round: int) -> None:
        """Drop state of rounds < ``round`` (the caller's memory bound; the round window rejects them anyway)."""
        self.store.forget_rounds_before(round)

    # ---------------------------------------------------------------- internals: caller side

    def _call(self, fn, *args):
        if self._token is None or self._thread is None or not self._thread.is_alive():
            raise GossipError("gossip node is not running")
        try:
            return trio.from_thread.run(fn, *args, trio_token=self._token)
        except trio.RunFinishedError as exc:
            raise GossipError("gossip node stopped") from exc

    def _check_own(self, data: bytes) -> None:
        verdict = self.validator.check(data)
        if not verdict.accepted:
            raise GossipError(f"peers would drop this message ({verdict.reason.value}): {verdict.detail}")

    # ---------------------------------------------------------------- internals: trio thread

    def _thread_main(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # surfaced by start(); after start, logged
            if not self._ready.is_set():
                self._startup_error = exc
            else:
                log.exception("gossip thread crashed")
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop_event = trio.Event()
        listen = multiaddr.Multiaddr(self.listen)
        host = new_host(key_pair=self._key_pair, listen_addrs=[listen])
        router = GossipSub(
            protocols=[PROTOCOL_ID], degree=6, degree_low=4, degree_high=12,
            heartbeat_interval=self.heartbeat_interval, heartbeat_initial_delay=0.1,
            max_messages_per_topic_per_second=self.rate_limit,
        )
        pubsub = Pubsub(host, router)
        self._host, self._pubsub = host, pubsub
        try:
            async with host.run(listen_addrs=[listen]):
                async with background_trio_service(pubsub), background_trio_service(router):
                    await pubsub.wait_until_ready()
                    pubsub.set_topic_validator(self.topic, self._validate, False)
                    upload_limit = trio.CapacityLimiter(self.bulk_fetches)
                    host.set_stream_handler(bulk.PROTOCOL,
                                            lambda stream: bulk.serve(stream, self.store.lookup, upload_limit))
                    subscription = await pubsub.subscribe(self.topic)
                    bound_port = int(host.get_addrs()[0].value_for_protocol("tcp"))
                    self.multiaddr = with_peer_id(announced(self.listen, self.announce, bound_port), str(self.peer_id))
                    async with trio.open_nursery() as nursery:
                        self._fetcher = BulkFetcher(nursery, host, self.store, self._topic_peers, str(self.peer_id),
                                                    self.bulk_fetches, self.bulk_give_up, lambda: self.peer_count)
                        nursery.start_soon(self._drain, subscription)
                        nursery.start_soon(self._watch_peers)
                        self._targets = DialTargets(nursery, self._keep_connected, str(self.peer_id))
                        for address in self.bootstrap:
                            self._targets.add_bootstrap(address)
                        self._ready.set()
                        log.info("gossip listening on %s (port %d), dial %s, topic %s",
                                 self.listen, bound_port, self.multiaddr, self.topic)
                        await self._stop_event.wait()
                        nursery.cancel_scope.cancel()
        finally:
            # Pubsub's seen-message cache owns a sweeper thread that nothing else stops.
            pubsub.seen_messages.stop()

    async def _drain(self, subscription) -> None:
        # State is recorded by the validator; the subscription queue only needs emptying.
        while True:
            await subscription.get()

    async def _keep_connected(self, address: str) -> None:
        try:
            peer_id = info_from_p2p_addr(multiaddr.Multiaddr(address)).peer_id
        except (multiaddr.exceptions.Error, ValueError) as exc:
            log.warning("gossip: bootstrap address %s is not a /p2p/ multiaddr (%s); not dialling it", address, exc,
                        extra={"event": "bad_bootstrap", "peers": self.peer_count})
            return
        await keep_connected(address, peer_id, self._redial, (GossipError,), self._is_topic_peer,
                             lambda: self.peer_count, self.dial_policy)

    def _set_discovered(self, addresses: list[str]) -> None:
        assert self._targets is not None
        added = self._targets.set_discovered(addresses)
        if added:
            log.info("gossip: dialling %d member(s) announced on the ledger: %s", len(added), ", ".join(added),
                     extra={"event": "discovered", "peers": self.peer_count})

    async def _redial(self, address: str, timeout: float) -> str:
        # libp2p refuses to dial a peer for 60 s after all its addresses failed ("negative cache"): a peer
        # that starts a few seconds after us would stay unreached that long. The backoff is ours instead.
        assert self._host is not None
        self._host.get_network().unblock_peer(info_from_p2p_addr(multiaddr.Multiaddr(address)).peer_id)
        return await self._connect(address, timeout)

    def _is_topic_peer(self, peer_id: ID) -> bool:
        assert self._pubsub is not None
        return peer_id in self._pubsub.peers and peer_id in self._pubsub.peer_topics.get(self.topic, set())

    async def _watch_peers(self) -> None:
        """Keep `peer_count` current; a change is an info record (the node's log shows the count)."""
        while True:
            count = len(await self._topic_peers())
            with self._lock:
                changed, self._peer_count = count != self._peer_count, count
            if changed:
                log.info("gossip: %d peer(s) connected", count, extra={"event": "peers", "peers": count})
            await trio.sleep(0.5)

    async def _connect(self, address: str, timeout: float) -> str:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(address))
        except Exception as exc:
            raise GossipError(f"not a /p2p/ multiaddr: {address!r}") from exc
        assert self._host is not None and self._pubsub is not None
        try:
            with trio.fail_after(timeout):
                await self._host.connect(info)
                await self._pubsub.wait_for_subscription(info.peer_id, self.topic, timeout=timeout)
        except trio.TooSlowError as exc:
            raise GossipError(f"peer {address} not subscribed to {self.topic} within {timeout} s") from exc
        except GossipError:
            raise
        except Exception as exc:
            raise GossipError(f"cannot connect to {address}: {exc!r}") from exc
        return str(info.peer_id)

    async def _topic_peers(self) -> list[str]:
        assert self._pubsub is not None
        subscribed = self._pubsub.peer_topics.get(self.topic, set())
        return sorted(str(p) for p in subscribed if p in self._pubsub.peers)

    async def _publish(self, messages: list[bytes]) -> None:
        assert self._pubsub is not None
        if await self._topic_peers():
            self._warned_no_peers = False
        elif not self._warned_no_peers:  # once per streak of lonely publishes
            self._warned_no_peers = True
            log.warning("gossip: publishing to 0 peers (none connected); the others must fetch this update "
                        "from IPFS", extra={"event": "no_peers", "peers": 0})
        for data in messages:
            await self._pacer.wait()
            await self._pubsub.publish(self.topic, data)
            self.store.count_published()

    def _validate(self, forwarder: ID, msg) -> bool:
        """GossipSub topic validator: True = deliver and forward."""
        try:
            origin = ID(msg.from_id)
            own = forwarder == self.peer_id and origin == self.peer_id
            return self.store.admit(bytes(msg.data), own, str(origin))
        except Exception:  # never let a remote message take the router down
            log.exception("unexpected error while validating a gossip message")
            self.store.count_drop(DropReason.VALIDATOR_ERROR)
            return False

    def _on_envelope(self, envelope: Envelope, origin: str | None) -> None:
        """A member's envelope was accepted (trio thread): fetch the blob it names if too large for gossip."""
        if envelope.blob_size > self.bulk_threshold and self._fetcher is not None:
            self._fetcher.start(envelope, origin)
