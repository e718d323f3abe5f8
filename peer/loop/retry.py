"""Retry with backoff for transient RPC / IPFS failures, and nothing else.

A contract revert or a programming error is never retried: repeating it cannot help and would hide it.
The retry loop also watches the node's stop flag, so SIGTERM is honoured between attempts.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from peer.errors import PeerError
from peer.loop.log import NodeLog

T = TypeVar("T")


class Stopped(PeerError):
    """The node was asked to stop (SIGTERM / Ctrl-C); everything done so far is persisted."""


def is_transient(exc: BaseException) -> bool:
    """Network-level failures worth retrying: what the adapters mark `Transient` (an unreachable chain RPC or
    IPFS API), and the raw connection errors and timeouts of the HTTP stacks underneath them."""
    import requests
    from web3.exceptions import ProviderConnectionError, TimeExhausted

    from ledger_tools.errors import Transient

    return isinstance(exc, (Transient, ConnectionError, TimeoutError, requests.ConnectionError, requests.Timeout,
                            ProviderConnectionError, TimeExhausted))


class Retrier:
    """`retrier(what, fn)` = `fn()`, retried with exponential backoff while it fails transiently."""

    def __init__(self, nlog: NodeLog, *, sleep: Callable[[float], None], should_stop: Callable[[], bool],
                 attempts: int = 8, base_delay: float = 0.5, max_delay: float = 10.0) -> None:
        self.nlog = nlog
        self.sleep = sleep
        self.should_stop = should_stop
        self.attempts = attempts
        self.base_delay = base_delay
        self.max_delay = max_delay

    def __call__(self, what: str, fn: Callable[[], T], *, round: int | None = None,
                 attempts: int | None = None) -> T:
        attempts = attempts or self.attempts
        delay = self.base_delay
        for attempt in range(1, attempts + 1):
            if self.should_stop():
                raise Stopped()
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc) or attempt == attempts:
                    raise
                self.nlog.event(round, "retry", "retry", level="warning",
                                message=f"{what} failed ({type(exc).__name__}: {exc}); "
                                        f"retry {attempt} in {delay:.1f}s")
                self.sleep(delay)
                delay = min(delay * 2, self.max_delay)
        raise AssertionError("unreachable")


def is_unreachable(exc: BaseException) -> bool:
    """The IPFS node refused or dropped the connection (down, restarting) — not a timeout, which an IPFS node
    also gives for a CID it does not hold (a faulty peer's blob): that must stay an exclusion, not a wait."""
    from ledger_tools.blobstore import BlobStoreUnavailable

    if not isinstance(exc, BlobStoreUnavailable):
        return False
    try:
        import ipfshttpclient.exceptions as ipfs_errors

        return isinstance(exc.__cause__, (ipfs_errors.ConnectionError, ipfs_errors.ProtocolError))
    except ImportError:  # pragma: no cover
        return False


class ReachableBlobStore:
    """A blob store whose `cat` waits (with the node's Retrier) while the IPFS node is unreachable, so a
    restarting node delays the collection instead of turning honest peers' blobs into exclusions (which
    would make this peer vote another digest than the peers that had gossip copies). Any other failure —
    unknown CID, timeout, bad bytes — is raised at once, as `BlobStoreError`, for the collector to exclude."""

    def __init__(self, store, retry: Retrier, *, round: int | None = None) -> None:
        self.store = store
        self.retry = retry
        self.round = round

    def cat(self, cid: str, expected_sha256: bytes | str | None = None, *, max_bytes: int | None = None) -> bytes:
        """`max_bytes`: the caller's cap for this blob kind (None: the store's default), passed to the store,
        which stops reading past it (`BlobTooLarge`, never retried)."""
        from ledger_tools.blobstore import BlobStoreError

        def once() -> bytes:
            try:
                return self.store.cat(cid, expected_sha256=expected_sha256, max_bytes=max_bytes)
            except Exception as exc:
                if is_unreachable(exc):
                    raise  # transient: the Retrier waits and tries again
                if is_transient(exc):  # e.g. a timeout: not worth waiting for
                    raise BlobStoreError(str(exc)) from exc
                raise

        return self.retry(f"ipfs cat {cid}", once, round=self.round)

    def __getattr__(self, name: str):
        return getattr(self.store, name)
