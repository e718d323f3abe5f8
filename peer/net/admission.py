"""Admission of inbound gossip: the rules a node applies to every message before it is kept or forwarded.

Size first, then strict parsing, federation and chain, the round window, the signature and membership — cheapest
first, so the membership lookup only happens for correctly signed messages. It does no I/O itself; membership and
the current round come from callables the caller supplies (backed by the node's chain cache).
"""
from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from peer.net.envelope import EnvelopeError, GossipMessage, SignatureError, _address, decode_message


def federation_topic(chain_id: int, federation: str) -> str:
    """The one gossip topic of a federation."""
    return f"fedledger/{chain_id}/{_address(federation, 'federation')}"


class DropReason(str, enum.Enum):
    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    WRONG_FEDERATION = "wrong_federation"
    WRONG_ROUND = "wrong_round"
    FORGED = "forged"
    NON_MEMBER = "non_member"
    DUPLICATE = "duplicate"
    VALIDATOR_ERROR = "validator_error"
    LIMIT = "limit"


@dataclass(frozen=True)
class Verdict:
    message: GossipMessage | None
    reason: DropReason | None = None
    detail: str = ""

    @property
    def accepted(self) -> bool:
        return self.reason is None


@dataclass(frozen=True)
class EnvelopeValidator:
    """Admission rules for inbound gossip of one federation (stateless; de-duplication lives in the node).

    A message is accepted when it fits ``max_message_bytes``, parses strictly, names this federation and
    chain, has a round in ``[current_round() - rounds_behind, current_round() + rounds_ahead]``, is signed by
    its ``sender``, and ``is_member(sender)``. Checks run cheapest first, so the membership lookup (possibly
    a chain call) only happens for correctly signed messages.
    """

    federation: str
    chain_id: int
    is_member: Callable[[str], bool]
    current_round: Callable[[], int]
    rounds_behind: int = 1
    rounds_ahead: int = 1
    max_message_bytes: int = 768 * 1024
    max_blob_bytes: int = 256 * 1024 * 1024  # a 25M-parameter sealed update is ~100 MB

    def __post_init__(self) -> None:
        object.__setattr__(self, "federation", _address(self.federation, "federation"))

    @property
    def topic(self) -> str:
        return federation_topic(self.chain_id, self.federation)

    def check(self, data: bytes) -> Verdict:
        if len(data) > self.max_message_bytes:
            return Verdict(None, DropReason.OVERSIZED, f"{len(data)} bytes > {self.max_message_bytes}")
        try:
            message = decode_message(data)
        except EnvelopeError as exc:
            return Verdict(None, DropReason.MALFORMED, str(exc))
        if message.federation != self.federation or message.chain_id != self.chain_id:
            return Verdict(message, DropReason.WRONG_FEDERATION, f"{message.chain_id}/{message.federation}")
        if message.blob_size > self.max_blob_bytes:
            return Verdict(message, DropReason.OVERSIZED, f"blob of {message.blob_size} bytes")
        try:
            current = self.current_round()
        except Exception as exc:  # noqa: BLE001 - a failing callback must not kill the gossip thread
            return Verdict(message, DropReason.VALIDATOR_ERROR, f"current_round(): {exc!r}")
        if not current - self.rounds_behind <= message.round <= current + self.rounds_ahead:
            return Verdict(message, DropReason.WRONG_ROUND, f"round {message.round}, current {current}")
        try:
            message.verify()
        except SignatureError as exc:
            return Verdict(message, DropReason.FORGED, str(exc))
        try:
            member = bool(self.is_member(message.sender))
        except Exception as exc:  # noqa: BLE001 - as above
            return Verdict(message, DropReason.VALIDATOR_ERROR, f"is_member(): {exc!r}")
        if not member:
            return Verdict(message, DropReason.NON_MEMBER, message.sender)
        return Verdict(message)
