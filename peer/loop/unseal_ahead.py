"""Unseal the other members' updates as their bulk copies arrive, instead of all of them after the commit phase.

Unsealing n−1 sealed updates (AES-256-GCM over the payload, then sha256 of the plaintext for the committed
hash) is byte-proportional work: ~0.06 s per 44 MB update on one core, ~0.5 s for nine. Done in the collector
it sits in series after the exchange; done here, each blob is opened while the next ones are still on the wire
and the round's critical path keeps only the last blob's unseal.

A background thread watches the gossip node for round r's signed envelopes whose blob has arrived (spooled and
checked against the envelope's ``blob_sha256``), unseals each on a small pool and keeps the plaintext only if it
hashes to the envelope's update hash. The collector asks `take(commitment)`: the plaintext is handed over only
when the *commitment's* update hash equals that verified hash, so the result is exactly what `open_update` would
accept; anything else (no copy, an equivocating copy, a blob that does not unseal) is left to the collector's
normal gossip/IPFS path. Plaintexts are held from arrival to collection — the same n updates the collector holds
anyway — and dropped by `close`.
"""
from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from consensus.commitment import Commitment

log = logging.getLogger("fedledger.collect")

#: Workers unsealing arrived blobs: AES-GCM and sha256 are memory-bound, two overlap the exchange well on 2 cores.
THREADS = 2
#: Longest wait between looks at the gossip node. A node with `wait_for` (GossipNode) wakes the watcher as soon as
#: a blob arrives: polled every 10 ms, arrivals of a 1M-parameter exchange (over in ~0.03 s) were picked up in
#: batches and the last ones were still being unsealed well after it.
POLL = 0.01


class UnsealAhead:
    """Round `round`'s arrived blobs, unsealed in the background; `take` hands a verified plaintext over once."""

    def __init__(self, round: int, gossip, unseal: Callable[[bytes, str, int], bytes], *, me: str | None = None,
                 threads: int = THREADS, poll: float = POLL) -> None:
        self.round, self.gossip, self.unseal, self.me, self.poll = round, gossip, unseal, me, poll
        self._pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix=f"unseal-ahead-r{round}")
        self._jobs: dict[tuple[str, bytes], Future] = {}
        self._taken: set[tuple[str, bytes]] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"unseal-ahead-r{round}", daemon=True)

    def start(self) -> UnsealAhead:
        self._thread.start()
        return self

    def _watch(self) -> None:
        wait_for = getattr(self.gossip, "wait_for", None)
        while not self._stop.is_set():
            try:
                self._scan()
                if wait_for is not None:  # woken by the node when a blob arrives; the poll is the fallback
                    wait_for(lambda: self._stop.is_set() or bool(self._arrived()), self.poll)
                    continue
            except Exception as exc:  # noqa: BLE001 - a gossip node that died: the collector falls back to IPFS
                log.debug("unseal-ahead r%d: %r", self.round, exc)
            self._stop.wait(self.poll)

    def _arrived(self) -> list[tuple[str, bytes]]:
        """(sender, update hash) of the round's arrived blobs not yet opened or taken."""
        out = []
        for env in self.gossip.envelopes(self.round):
            key = (env.sender, env.update_hash)
            if env.sender == self.me or key in self._jobs or key in self._taken:
                continue
            if self.gossip.has_blob(env.update_hash, sender=env.sender):
                out.append(key)
        return out

    def _scan(self) -> None:
        for sender, update_hash in self._arrived():
            with self._lock:
                if self._stop.is_set():
                    return
                if (sender, update_hash) not in self._jobs and (sender, update_hash) not in self._taken:
                    self._jobs[(sender, update_hash)] = self._pool.submit(self._open, sender, update_hash)

    def _open(self, sender: str, update_hash: bytes) -> bytes | None:
        """The verified plaintext of the arrived blob naming `update_hash`, or None."""
        try:
            sealed = self.gossip.blob(update_hash, sender=sender)
            if sealed is None:
                return None
            update = self.unseal(sealed, sender, self.round)
        except Exception as exc:  # noqa: BLE001 - any failure (bad seal, vanished copy) is the collector's to judge
            log.debug("unseal-ahead r%d: %s's blob not opened: %r", self.round, sender, exc)
            return None
        del sealed
        return update if hashlib.sha256(update).digest() == update_hash else None

    def take(self, c: Commitment, timeout: float | None = None) -> bytes | None:
        """The commitment's update if its blob arrived and was (or is being) unsealed to the committed hash;
        waits up to `timeout` for an unseal in progress. A blob that arrived since the watcher's last look is
        opened here. Handed over once."""
        key = (c.member, c.update_hash)
        with self._lock:
            job = self._jobs.pop(key, None)
            fresh = key not in self._taken
            self._taken.add(key)
        if c.round != self.round:
            return None
        if job is None:
            try:
                arrived = fresh and self.gossip.has_blob(c.update_hash, sender=c.member)
            except Exception:  # noqa: BLE001 - a gossip node that died: the collector's own path decides
                return None
            return self._open(c.member, c.update_hash) if arrived else None
        try:
            return job.result(timeout)
        except TimeoutError:
            with self._lock:
                self._jobs[key] = job
                self._taken.discard(key)
            return None

    def started(self) -> int:
        with self._lock:
            return len(self._jobs)

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            jobs, self._jobs = list(self._jobs.values()), {}
        for job in jobs:
            job.cancel()
        self._pool.shutdown(wait=False, cancel_futures=True)


#: The round loop's running unsealers, by (context, round): started once the own update is published, taken by
#: the collector.
_RUNNING: dict[tuple[int, int], UnsealAhead] = {}


def start_for(ctx, r: int) -> None:
    """Start unsealing round r's arrived blobs for this node (once its own update is out); without gossip, nothing."""
    if ctx.gossip is None or (id(ctx), r) in _RUNNING:
        return
    for key in [k for k in _RUNNING if k[0] == id(ctx) and k[1] < r]:
        _RUNNING.pop(key).close()  # an earlier round whose collection never came (window missed)
    _RUNNING[(id(ctx), r)] = UnsealAhead(r, ctx.gossip, ctx.unseal, me=ctx.me).start()


def take_running(ctx, r: int) -> UnsealAhead | None:
    """The unsealer started for round r, handed to the collector (which closes it), or None."""
    return _RUNNING.pop((id(ctx), r), None)
