"""Fetch the committed updates of one round: gossip first, IPFS fallback; unseal; check the committed hash.

Whatever a faulty peer (or a lying IPFS node) did — no blob, a blob that does not unseal for us, one sealed
for another round or sender, bytes that do not hash to the committed update hash, an equivocating gossip
copy — the result is `update=None` for that commitment, i.e. an excluded contribution. Nothing here raises
for a bad blob; only the caller's own programming errors propagate.
"""
from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from consensus.commitment import Commitment, CommittedUpdate
from ledger_tools.updates import Unseal, UpdateUnusable, fetch_update, open_update
from peer.net.envelope import Envelope

log = logging.getLogger("fedledger.collect")

#: Worker threads fetching + unsealing one round's blobs. Fetches wait on the network and the IPFS node,
#: AES-GCM and sha256 release the GIL, so a few threads overlap well even on 2 cores.
FETCH_THREADS = 4

@dataclass
class CollectReport:
    """Where each update came from, and why the rejected ones were rejected (for logs and tests)."""

    source: dict[str, str] = field(default_factory=dict)      # peer -> "gossip" | "ipfs" | "local"
    rejected: dict[str, str] = field(default_factory=dict)    # peer -> reason
    equivocations: dict[str, str] = field(default_factory=dict)  # peer -> gossiped update hash (hex) ≠ committed
    mismatched: list[Envelope] = field(default_factory=list)    # their signed envelopes: commitment-mismatch evidence
    seconds: float = 0.0

    @property
    def from_gossip(self) -> int:
        return sum(1 for s in self.source.values() if s == "gossip")

    @property
    def from_ipfs(self) -> int:
        return sum(1 for s in self.source.values() if s == "ipfs")


def _open(unseal: Unseal, sealed: bytes, c: Commitment) -> tuple[bytes | None, str]:
    try:
        return open_update(sealed, c, unseal), ""
    except UpdateUnusable as exc:
        return None, str(exc)


def gossip_equivocations(round: int, commitments: Sequence[Commitment], gossip) -> list[Envelope]:
    """The signed gossip envelopes for `round` of committed peers naming another update hash than their
    commitment: slashable evidence (`peer.net.equivocation_log.save_mismatch_evidence`). Only the on-chain
    commitment counts, so these peers' updates are still fetched by their committed hash."""
    committed = {c.member: c.update_hash for c in commitments}
    found: list[Envelope] = []
    try:
        envelopes = gossip.envelopes(round)
    except Exception:  # noqa: BLE001 - a dead gossip node: no evidence, nothing else changes
        return found
    for env in envelopes:
        want = committed.get(env.sender)
        if want is not None and env.update_hash != want:
            found.append(env)
    return found


def collect_updates(
    round: int,
    commitments: Sequence[Commitment],
    *,
    unseal: Unseal,
    blobstore=None,
    gossip=None,
    local: dict[str, bytes] | None = None,
    gossip_wait: float = 3.0,
    threads: int = FETCH_THREADS,
    max_blob_bytes: int | None = None,
    unsealed: Callable[[Commitment], bytes | None] | None = None,
) -> tuple[list[CommittedUpdate], CollectReport]:
    """One `CommittedUpdate` per commitment (canonical update bytes or None), plus a report.

    `local` maps a peer address to canonical bytes this node already holds and trusts (its own update);
    they are still checked against the committed hash. `gossip` is a `peer.net.gossip.GossipNode` (or None);
    its copies are waited for up to `gossip_wait` seconds in total, then IPFS is asked for what is missing.

    Fetching and unsealing run on `threads` worker threads: a gossip copy is unsealed as soon as it has
    arrived (while the others are still awaited), and the IPFS fetches of the missing blobs run side by side.
    A gossip copy that does not unseal to the committed hash falls back to IPFS like a missing one.
    `max_blob_bytes` caps every IPFS fetch (the spec-derived `sealed_update_cap`; None: the store's default): a
    larger blob is rejected as `blob-too-large` without being read past the cap.
    `unsealed(c)`: the update already unsealed on arrival (`peer.loop.unseal_ahead`) and checked against c's
    committed hash, or None; such an update counts as a gossip copy and is not fetched again.
    """
    if any(c.round != round for c in commitments):
        raise ValueError(f"collect_updates(round={round}) got a commitment of another round")
    started = time.perf_counter()
    report = CollectReport()
    result: dict[str, bytes | None] = {}
    pending: list[Commitment] = []
    for c in commitments:
        own = (local or {}).get(c.member)
        if own is not None and hashlib.sha256(own).digest() == c.update_hash:
            result[c.member] = own
            report.source[c.member] = "local"
        elif unsealed is not None and (early := unsealed(c)) is not None:
            result[c.member] = early
            report.source[c.member] = "gossip"
        else:
            pending.append(c)

    if gossip is not None:
        report.mismatched = gossip_equivocations(round, commitments, gossip)
        report.equivocations = {e.sender: "0x" + e.update_hash.hex() for e in report.mismatched}

    if pending:
        fetch = _IpfsFetch(unseal, blobstore, max_blob_bytes)
        _fetch_concurrently(round, pending, fetch=fetch, gossip=gossip,
                            gossip_wait=gossip_wait, threads=threads, result=result, report=report)

    report.seconds = time.perf_counter() - started
    updates = [CommittedUpdate(c, result.get(c.member)) for c in commitments]
    return updates, report


@dataclass(frozen=True)
class _IpfsFetch:
    """How one round's blobs are fetched from the blob store: unseal function, store, per-blob cap."""

    unseal: Unseal
    blobstore: Any                      # BlobStore (or a ReachableBlobStore); None: gossip only
    max_bytes: int | None


def _from_ipfs(fetch: _IpfsFetch, c: Commitment) -> tuple[bytes | None, str, str]:
    """(update, source, why not) for one commitment fetched from the blob store. A node stopping during the
    fetch (`Stopped` from the retrying store) propagates: that is not a faulty peer's blob."""
    if fetch.blobstore is None:
        return None, "", "no gossip copy and no blob store"
    try:
        return fetch_update(fetch.blobstore, c, fetch.unseal, max_bytes=fetch.max_bytes), "ipfs", ""
    except UpdateUnusable as exc:
        return None, "", f"IPFS {exc}"


def _from_gossip(fetch: _IpfsFetch, read: Callable[[], bytes | None], c: Commitment) -> tuple[bytes | None, str, str]:
    """The gossip copy is read (from the node's spool) only here, inside the worker: at most `threads`
    sealed blobs are in memory at once, whatever the number of peers."""
    sealed = read()
    update = None if sealed is None else _open(fetch.unseal, sealed, c)[0]
    del sealed
    if update is not None:
        return update, "gossip", ""
    return _from_ipfs(fetch, c)  # a bad (or vanished) gossip copy proves nothing about the blob


def _fetch_concurrently(round: int, pending: Sequence[Commitment], *, fetch: _IpfsFetch, gossip,
                        gossip_wait: float, threads: int, result: dict[str, bytes | None],
                        report: CollectReport) -> None:
    jobs: dict[str, Future] = {}
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix=f"collect-r{round}") as pool:
        if gossip is not None:
            def arrived(c: Commitment) -> bool:
                try:
                    return gossip.has_blob(c.update_hash, sender=c.member)
                except Exception:  # noqa: BLE001 - a gossip node that died must not stop the round: IPFS is the fallback
                    return False

            def gossip_copy(c: Commitment) -> Callable[[], bytes | None]:
                def read() -> bytes | None:
                    try:
                        return gossip.blob(c.update_hash, sender=c.member)
                    except Exception:  # noqa: BLE001 - as above
                        return None
                return read

            def start_arrived() -> bool:
                for c in pending:
                    if c.member not in jobs and arrived(c):
                        jobs[c.member] = pool.submit(_from_gossip, fetch, gossip_copy(c), c)
                return len(jobs) == len(pending)

            try:
                gossip.wait_for(start_arrived, gossip_wait)
            except Exception as exc:  # noqa: BLE001 - a failing gossip wait: IPFS is the fallback
                log.warning("gossip wait failed (%s); using IPFS", exc)
        for c in pending:
            if c.member not in jobs:
                jobs[c.member] = pool.submit(_from_ipfs, fetch, c)
        for c in pending:
            update, source, why = jobs[c.member].result()
            result[c.member] = update
            if update is None:
                report.rejected[c.member] = why
            else:
                report.source[c.member] = source
