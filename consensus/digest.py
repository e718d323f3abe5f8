"""The vote digest: what every peer signs off on for a round (docs/interfaces.md)."""
from __future__ import annotations

from collections.abc import Sequence

from consensus.keccak import address_bytes, keccak256


def excluded_hash(excluded: Sequence[str]) -> bytes:
    """keccak256(abi.encodePacked(address[] sorted ascending)): each address left-padded to 32 bytes."""
    raw = sorted(address_bytes(a) for a in excluded)
    if len(set(raw)) != len(raw):
        raise ValueError("duplicate address in the excluded set")
    return keccak256(b"".join(b"\x00" * 12 + a for a in raw))


def _bytes32(name: str, value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValueError(f"{name} must be 32 bytes")
    return bytes(value)


def vote_digest(aggregate_hash: bytes, rewards_root: bytes, excluded: Sequence[str]) -> bytes:
    """keccak256(aggregateHash || rewardsRoot || excludedHash); the excluded set is sorted here."""
    return keccak256(_bytes32("aggregate_hash", aggregate_hash) + _bytes32("rewards_root", rewards_root)
                     + excluded_hash(excluded))
