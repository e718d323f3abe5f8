"""The gossip node's two addresses: what its libp2p host binds (`listen`) and what others dial (`announce`).

`listen` may be a wildcard (`/ip4/0.0.0.0/tcp/4001`: every interface); `announce` never is — a wildcard is
something to bind, not something to dial. Without `announce`, a concrete `listen` address is announced
(with the port the host actually bound, for port 0); a wildcard `listen` without `announce` is refused
rather than guessing which of the machine's interfaces the other institutions can reach.
"""
from __future__ import annotations

import ipaddress

import multiaddr

DEFAULT_LISTEN = "/ip4/127.0.0.1/tcp/0"
_IP_PROTOCOLS = ("ip4", "ip6")
_HOST_PROTOCOLS = ("ip4", "ip6", "dns", "dns4", "dns6")


#: what to do about any GossipAddressError (the CLI prints it as the hint)
ANNOUNCE_HINT = ("announce this machine's address as the other institutions reach it: "
                 "--announce /ip4/<this machine's IP>/tcp/<listen port> (or announce = \"...\" in peer.toml)")


#: what to do about a BootstrapAddressError
BOOTSTRAP_HINT = ("pass the full multiaddr another peer's `fedledger peer id --announce ...` printed: "
                  "--bootstrap /ip4/HOST/tcp/PORT/p2p/PEER_ID (or leave it out: members' announced addresses are "
                  "dialled anyway)")


class GossipAddressError(ValueError):
    """A listen/announce multiaddr that cannot be used; the message says why (`hint`: what to do)."""

    hint = ANNOUNCE_HINT


class BootstrapAddressError(GossipAddressError):
    """A bootstrap address that is not a dialable `/…/tcp/PORT/p2p/PEER_ID` multiaddr."""

    hint = BOOTSTRAP_HINT


def _split(value: str, what: str, hosts: tuple[str, ...]) -> tuple[str, str, int]:
    """(protocol, host, port) of `/<proto>/<host>/tcp/<port>`; anything else is refused."""
    try:
        parts = [(p.name, v) for p, v in multiaddr.Multiaddr(value).items()]
    except multiaddr.exceptions.Error as exc:
        raise GossipAddressError(f"{what} {value!r} is not a multiaddr") from exc
    if len(parts) != 2 or parts[0][0] not in hosts or parts[1][0] != "tcp":
        example = "/ip4/0.0.0.0/tcp/4001" if what == "listen" else "/ip4/192.0.2.10/tcp/4001"
        raise GossipAddressError(f"{what} {value!r} must look like /{'|'.join(hosts)}/HOST/tcp/PORT, e.g. {example}")
    return parts[0][0], str(parts[0][1]), int(parts[1][1])


def _is_wildcard(protocol: str, host: str) -> bool:
    return protocol in _IP_PROTOCOLS and ipaddress.ip_address(host).is_unspecified


def check_listen(value: str) -> str:
    _split(value, "listen", _IP_PROTOCOLS)
    return value


def check_announce(value: str) -> str:
    protocol, host, port = _split(value, "announce", _HOST_PROTOCOLS)
    if _is_wildcard(protocol, host):
        raise GossipAddressError(f"announce address {value} is not dialable ({host} is a listen-only wildcard)")
    if port == 0:
        raise GossipAddressError(f"announce address {value} has port 0: announce the port the others dial "
                                 "(and listen on that fixed port)")
    return value


def check_bootstrap(value: str) -> str:
    """A bootstrap peer's address: a multiaddr that ends in /p2p/PEER_ID (gossip dials it by peer id)."""
    try:
        parts = [p.name for p, _ in multiaddr.Multiaddr(value).items()]
    except (multiaddr.exceptions.Error, ValueError) as exc:
        raise BootstrapAddressError(f"bootstrap address {value!r} is not a multiaddr") from exc
    if len(parts) < 3 or parts[0] not in _HOST_PROTOCOLS or parts[-1] != "p2p":
        raise BootstrapAddressError(f"bootstrap address {value!r} must look like /ip4/HOST/tcp/PORT/p2p/PEER_ID")
    return value


def check_pair(listen: str, announce: str | None) -> None:
    """Refuse a wildcard listen address without an announce address (nothing dialable to tell the others)."""
    protocol, host, _ = _split(listen, "listen", _IP_PROTOCOLS)
    if announce is None and _is_wildcard(protocol, host):
        raise GossipAddressError(f"listen address {listen} binds every interface and no announce address "
                                 "says which one the other peers dial")


def announced(listen: str, announce: str | None, bound_port: int) -> str:
    """The multiaddr (without /p2p/) that others dial: `announce`, else `listen` with the bound port."""
    if announce is not None:
        return announce
    check_pair(listen, announce)
    protocol, host, _ = _split(listen, "listen", _IP_PROTOCOLS)
    return f"/{protocol}/{host}/tcp/{bound_port}"


def with_peer_id(address: str, peer_id: str) -> str:
    return f"{address}/p2p/{peer_id}"
