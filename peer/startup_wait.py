"""Wait at start-up for the services a peer needs (its chain node, its IPFS node), with capped backoff, saying so.

A peer is often started together with its infrastructure (a machine booting, a devnet coming back after a crash):
exiting at once because the chain does not answer yet makes the operator restart it by hand. So before its first
chain read the peer probes each service; while one is down it logs one line per attempt ("waiting for chain at
URL (attempt k, next in s)") and retries after 1 s, 2 s, 4 s … capped at 30 s, for at most `budget` seconds.
Only an unreachable service is waited for: a service that answers wrongly (no contract, not an Ethereum node) is
left to the peer's own checks, which report it at once.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

FIRST_DELAY = 1.0
MAX_DELAY = 30.0
DEFAULT_BUDGET = 180.0


@dataclass(frozen=True)
class Service:
    """A service to wait for: `probe()` returns normally when it answers and raises when it does not."""

    name: str                    # "chain", "IPFS"
    url: str
    probe: Callable[[], object]


def _unreachable(service: Service) -> bool:
    from peer.loop.retry import is_transient

    try:
        service.probe()
    except Exception as exc:  # noqa: BLE001 - any probe failure is classified right here
        return is_transient(exc)
    return False


def wait_for_services(services: Sequence[Service], *, budget: float, say: Callable[[str, str], None],
                      sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic,
                      first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY) -> list[Service]:
    """Probe `services` until all answer or `budget` seconds have passed; return those still unreachable.

    `budget=0` probes once and never waits. `say(event, line)`: one "waiting" line per attempt naming every service
    still down, and one "answering" line once they all answer after a wait."""
    start = clock()
    delay = first_delay
    pending = list(services)
    waited_for: list[Service] = []
    attempt = 0
    while True:
        attempt += 1
        pending = [s for s in pending if _unreachable(s)]
        left = budget - (clock() - start)
        if not pending or left <= 0:
            if waited_for and not pending:
                say("answering", f"{_names(waited_for)} answering after {clock() - start:.0f} s")
            return pending
        waited_for += [s for s in pending if s not in waited_for]
        pause = min(delay, left)
        say("waiting", f"waiting for {_names(pending)} (attempt {attempt}, next in {pause:.2g} s)")
        sleep(pause)
        delay = min(delay * 2, max_delay)


def _names(services: Sequence[Service]) -> str:
    return " and ".join(f"{s.name} at {s.url}" for s in services)


def chain_service(ledger) -> Service:
    """The chain node behind a `FederationLedger`: answers when it returns its chain id."""
    return Service("chain", ledger.rpc_url, lambda: ledger.chain_id)


def ipfs_service(api_url: str, timeout: float = 5.0) -> Service:
    """The IPFS node's RPC API: answers when it returns its peer id (one try per probe, no inner retries)."""

    def probe() -> str:
        from ledger_tools.blobstore import IpfsBlobStore

        store = IpfsBlobStore(api_url, timeout=timeout, retries=0)
        try:
            return store.node_id()
        finally:
            store.close()

    return Service("IPFS", api_url, probe)
