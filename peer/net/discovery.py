"""Finding the other members' gossip nodes from the ledger, so that no single bootstrap peer is needed.

Each member publishes the multiaddr the others dial (`announce` + `/p2p/<peer id>`) with the contract's
`announce(multiaddr)`; the latest `MemberAnnounced` event per member counts. The round loop reads those
events once per round (never the gossip thread: a slow chain must not stall the router) and hands the
checked addresses to the gossip node, which dials them, and re-dials them with backoff, next to any
configured bootstrap peers. An announcement that is not a dialable `/…/tcp/PORT/p2p/ID` multiaddr is ignored
with one warning per (member, value); our own announcement, and a non-member's, are ignored silently.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Mapping

import multiaddr
from libp2p.peer.peerinfo import info_from_p2p_addr

from ledger_tools.chain import Announcement, FederationLedger
from peer.net.gossip_addr import GossipAddressError, check_announce

log = logging.getLogger("fedledger.gossip")

def dialable_peer_address(value: str) -> str | None:
    """The libp2p peer id of a dialable `/<ip4|ip6|dns…>/HOST/tcp/PORT/p2p/ID`, else None (also for a
    wildcard host or port 0: what `announce` refuses for our own address, `gossip_addr.check_announce`)."""
    try:
        parts = [p.name for p, _ in multiaddr.Multiaddr(value).items()]
        peer_id = info_from_p2p_addr(multiaddr.Multiaddr(value)).peer_id
        if len(parts) != 3 or parts[2] != "p2p":
            return None
        check_announce(value.rsplit("/p2p/", 1)[0])
    except (multiaddr.exceptions.Error, GossipAddressError, ValueError, TypeError, KeyError):
        return None
    return str(peer_id)


class LedgerDiscovery:
    """This member's announcement on the ledger, and the other members' announced gossip addresses."""

    def __init__(self, ledger: FederationLedger, me: str, own_peer_id: str | None = None) -> None:
        self.ledger = ledger
        self.me = me
        self.own_peer_id = own_peer_id
        self._warned: set[tuple[str, str]] = set()

    def publish(self, own_multiaddr: str) -> bool:
        """Announce `own_multiaddr` unless it already is this member's latest announcement; True if sent."""
        latest = self.ledger.announcements().get(self.me)
        if latest is not None and latest.multiaddr == own_multiaddr:
            return False
        self.ledger.announce(own_multiaddr)
        return True

    def peers(self, members: Collection[str]) -> list[str]:
        """The other current members' announced, dialable multiaddrs (reads the chain's events)."""
        return self.select(self.ledger.announcements(), members)

    def select(self, announcements: Mapping[str, Announcement], members: Collection[str]) -> list[str]:
        """The dialable addresses among `announcements` of `members` other than this one (warns on bad ones)."""
        out = []
        for member, ann in sorted(announcements.items()):
            if member == self.me or member not in members:
                continue
            peer_id = dialable_peer_address(ann.multiaddr)
            if peer_id is None:
                self._warn_once(member, ann.multiaddr, "is not a dialable /ip4|ip6|dns/HOST/tcp/PORT/p2p/ID "
                                                       "multiaddr")
                continue
            if peer_id == self.own_peer_id:
                self._warn_once(member, ann.multiaddr, "names this node's own peer id")
                continue
            out.append(ann.multiaddr)
        return out

    def _warn_once(self, member: str, value: str, why: str) -> None:
        if (member, value) in self._warned:
            return
        self._warned.add((member, value))
        log.warning("gossip: ignoring member %s's announced address %r: it %s", member, value[:300], why,
                    extra={"event": "bad_announcement"})
