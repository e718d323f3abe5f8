"""A member's commitment to its update for one round: the one record peers, auditors and the simulator share.

The chain binding decodes `Committed` events into it, the collector fetches blobs by it and the round outcome
aggregates the updates obtained for it. It is pure data (the chain metadata — block, transaction, gas — is
zero for a commitment not read from a chain), so the protocol core needs no web3.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

#: epsilonE6 value meaning "trained without differential privacy".
NO_DP = 2**64 - 1


def bytes32(value: bytes | str) -> bytes:
    """32 raw bytes from bytes or a (0x-)hex string; ValueError otherwise."""
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


@dataclass(frozen=True)
class Commitment:
    """`commit(round, updateHash, cid, numSamples, ε, δ)` as recorded by the ledger."""

    member: str
    update_hash: bytes  # sha256 of the canonical update bytes
    cid: str  # of the sealed blob
    num_samples: int  # self-reported; capped by the federation's sample_cap where weights use it
    round: int = 0
    epsilon_e6: int = NO_DP
    delta_e18: int = 0
    block_number: int = 0
    tx_hash: str = ""
    gas_used: int = 0

    @property
    def epsilon(self) -> float | None:
        """Privacy spent (ε); None when the member trained without differential privacy."""
        return None if self.epsilon_e6 == NO_DP else self.epsilon_e6 / 1e6

    @property
    def delta(self) -> float:
        return self.delta_e18 / 1e18

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str, gas_used: int = 0) -> Commitment:
        """From a `Committed` event's arguments, as web3 decodes them or in their JSON form (hex for bytes)."""
        return cls(args["member"], bytes32(args["updateHash"]), args["cid"], int(args["numSamples"]),
                   int(args["round"]), int(args["epsilonE6"]), int(args["deltaE18"]), block_number, tx_hash,
                   gas_used)


@dataclass(frozen=True)
class CommittedUpdate:
    """A commitment with the canonical update bytes the caller obtained for it (None: missing or unusable)."""

    commitment: Commitment
    update: bytes | None

    @property
    def member(self) -> str:
        return self.commitment.member

    @property
    def update_hash(self) -> bytes:
        return self.commitment.update_hash

    @property
    def num_samples(self) -> int:
        return self.commitment.num_samples


def canonical_order(members: Sequence[str]) -> list[str]:
    """The protocol's canonical member order: addresses ascending as 160-bit numbers."""
    return sorted(members, key=lambda a: int(a, 16))
