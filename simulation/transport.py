"""How a simulated round's updates travel and become final: the `Transport` interface and the ledger-free
in-memory transport (the chain + IPFS one is `simulation.chain_transport`)."""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

import consensus
from consensus.commitment import Commitment, CommittedUpdate
from consensus.round_outcome import RoundOutcome
from simulation.records import PhaseClock

if TYPE_CHECKING:
    from simulation.engine import SimEngine


class Transport(Protocol):
    """How updates travel and how the round's outcome becomes final (in memory, or chain + IPFS)."""

    def start(self, engine: "SimEngine", genesis_model: bytes) -> None: ...

    def publish(self, round: int, blobs: Mapping[str, tuple[bytes, int]], clock: PhaseClock) -> list[CommittedUpdate]:
        """Make each peer's canonical update available and committed; return the round's commitments
        as an honest peer sees them (canonical update bytes fetched, checked and unsealed)."""
        ...

    def finalize(self, round: int, outcome: RoundOutcome | None, clock: PhaseClock) -> tuple[bool, int, int]:
        """Votes of every peer; returns (finalized, gas used this round, number of votes)."""
        ...

    def close(self) -> None: ...


class LocalTransport:
    """Ledger-free transport: blobs are handed over in memory; the honest majority's outcome is final."""

    def start(self, engine: "SimEngine", genesis_model: bytes) -> None:
        self.engine = engine

    def publish(self, round: int, blobs: Mapping[str, tuple[bytes, int]], clock: PhaseClock) -> list[CommittedUpdate]:
        return [
            CommittedUpdate(Commitment(p, consensus.update_hash(b), "", n, round=round), b)
            for p, (b, n) in blobs.items()
        ]

    def finalize(self, round: int, outcome: RoundOutcome | None, clock: PhaseClock) -> tuple[bool, int, int]:
        with clock.phase("vote"):
            if outcome is None:
                return False, 0, 0
            honest = [p for p in self.engine.peers if not p.byzantine]
            digests = [outcome.digest for _ in honest]  # every honest peer derives the same digest
            return len(digests) * 2 > len(self.engine.peers), 0, len(digests)

    def close(self) -> None:
        pass
