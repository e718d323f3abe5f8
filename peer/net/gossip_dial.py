"""Keep a gossip node connected to the peers it was told about: re-dial with backoff, forever, and say so.

A dial that keeps failing is a WARNING on the `fedledger.gossip` logger once per failure streak (not once
per attempt), after `warn_after` seconds — a streak shorter than that is usually a peer still starting.
Log records carry `event` and `peers` (connected topic peers) attributes, which `fedledger peer run`
turns into the node's own log lines.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from libp2p.peer.id import ID

log = logging.getLogger("fedledger.gossip")


@dataclass(frozen=True)
class DialPolicy:
    first_delay: float = 0.5    # seconds before the second attempt; doubles per failure
    max_delay: float = 30.0     # backoff cap: a peer that comes back is found within this
    dial_timeout: float = 10.0  # one attempt: connect + wait for its topic subscription
    warn_after: float = 5.0     # warn once a failure streak is this old
    check_interval: float = 1.0 # how often a connected peer is checked for a dropped connection


async def keep_connected(
    address: str,
    peer_id: ID,
    dial: Callable[[str, float], Awaitable[str]],
    dial_errors: tuple[type[Exception], ...],
    connected: Callable[[ID], bool],
    peer_count: Callable[[], int],
    policy: DialPolicy,
) -> None:
    """Dial `address` until connected, watch the connection, re-dial when it drops; never returns.

    `dial(address, timeout)` raises one of `dial_errors` when an attempt fails."""
    delay, failures, streak_start, warned = policy.first_delay, 0, None, False
    while True:
        if connected(peer_id):
            if warned:
                log.info("gossip: reached %s after %d failed dials", address, failures,
                         extra={"event": "peer_reached", "peers": peer_count()})
            delay, failures, streak_start, warned = policy.first_delay, 0, None, False
            await trio.sleep(policy.check_interval)
            continue
        try:
            await dial(address, policy.dial_timeout)
            await trio.sleep(0)  # let the connection bookkeeping settle before the next check
            continue
        except dial_errors as exc:
            failures += 1
            now = trio.current_time()
            streak_start = now if streak_start is None else streak_start
            if not warned and now - streak_start >= policy.warn_after:
                log.warning("gossip: cannot reach peer %s (%d dials in %.0f s; last error: %s); "
                            "re-dialling every %.0f s at most, updates go through IPFS meanwhile",
                            address, failures, now - streak_start, exc, policy.max_delay,
                            extra={"event": "dial_failed", "peers": peer_count()})
                warned = True
            log.debug("gossip dial %s failed: %s; retrying in %.1f s", address, exc, delay)
        await trio.sleep(delay)
        delay = min(delay * 2, policy.max_delay)


class DialTargets:
    """The addresses a gossip node keeps connected to, one `keep_connected` task each: the configured
    bootstrap peers (for the node's lifetime) plus the members' addresses discovered on the ledger, which
    `set_discovered` replaces as a whole (a member that re-announced is dialled at its new address only).

    Lives on the gossip (trio) thread; `set_discovered` never waits for a dial."""

    def __init__(self, nursery: trio.Nursery, keep: Callable[[str], Awaitable[None]], own_peer_id: str) -> None:
        self._nursery = nursery
        self._keep = keep
        self._own = own_peer_id
        self._bootstrap: set[str] = set()
        self._discovered: dict[str, trio.CancelScope] = {}

    def add_bootstrap(self, address: str) -> None:
        if address not in self._bootstrap:
            self._bootstrap.add(address)
            self._nursery.start_soon(self._keep, address)

    def set_discovered(self, addresses: list[str]) -> list[str]:
        """Dial `addresses` (ours and the bootstrap peers' left out), stop dialling the ones no longer
        listed; returns the newly added addresses."""
        wanted = {a for a in addresses if a not in self._bootstrap and not a.endswith("/p2p/" + self._own)}
        for address in set(self._discovered) - wanted:
            self._discovered.pop(address).cancel()
        added = sorted(wanted - set(self._discovered))
        for address in added:
            scope = trio.CancelScope()
            self._discovered[address] = scope
            self._nursery.start_soon(self._keep_in, scope, address)
        return added

    @property
    def discovered(self) -> list[str]:
        return sorted(self._discovered)

    async def _keep_in(self, scope: trio.CancelScope, address: str) -> None:
        with scope:
            await self._keep(address)
