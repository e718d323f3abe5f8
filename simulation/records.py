"""What a simulation produces: per-peer and per-round records, the run's result, and per-phase wall time."""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field

from peer.learning.tasks import TaskData
from simulation.config import PHASES


@dataclass
class SimPeer:
    index: int
    address: str
    private_key: bytes
    data: TaskData
    byzantine: bool
    attack: str


@dataclass
class RoundRecord:
    round: int
    accuracy: float
    loss: float
    finalized: bool
    aggregate_hash: str
    excluded: list[str]
    excluded_byzantine: int
    excluded_honest: int
    rejected_byzantine: int          # Byzantine peers excluded or given score 0 by the rule (not rewarded)
    rejected_honest: int
    phase_seconds: dict[str, float]
    wall_seconds: float
    gas_used: int = 0
    votes: int = 0
    rewarded_honest_wei: int = 0     # what the finalized round's reward tree pays honest peers (0 if not finalized)
    rewarded_byzantine_wei: int = 0


@dataclass
class SimResult:
    config: dict
    peers: list[dict]
    rounds: list[RoundRecord] = field(default_factory=list)
    genesis_accuracy: float = float("nan")
    final_model_hash: str = ""
    ledger: dict = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else self.genesis_accuracy

    def summary(self) -> dict:
        """Honest vs Byzantine over the whole run: exclusions, peer-rounds not rewarded, rewards (wei and share)."""
        honest = sum(r.rewarded_honest_wei for r in self.rounds)
        byzantine = sum(r.rewarded_byzantine_wei for r in self.rounds)
        total = honest + byzantine
        return {
            "excluded_honest": sum(r.excluded_honest for r in self.rounds),
            "excluded_byzantine": sum(r.excluded_byzantine for r in self.rounds),
            "not_rewarded_honest": sum(r.rejected_honest for r in self.rounds),
            "not_rewarded_byzantine": sum(r.rejected_byzantine for r in self.rounds),
            "rewards_honest_wei": str(honest), "rewards_byzantine_wei": str(byzantine),
            "rewards_honest_share": honest / total if total else None,
            "rewards_byzantine_share": byzantine / total if total else None,
        }

    def to_json(self) -> dict:
        return {
            "summary": self.summary(),
            "config": self.config,
            "peers": self.peers,
            "genesis_accuracy": self.genesis_accuracy,
            "final_accuracy": self.final_accuracy,
            "final_model_hash": self.final_model_hash,
            "ledger": self.ledger,
            "rounds": [asdict(r) for r in self.rounds],
        }


class PhaseClock:
    """Wall time per protocol phase, accumulated over one round."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def snapshot(self) -> dict[str, float]:
        return {p: round(self.seconds.get(p, 0.0), 6) for p in PHASES}

def round_(x: float) -> float:
    return float(f"{x:.6f}")
