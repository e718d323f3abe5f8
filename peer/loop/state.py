"""What a peer has done, persisted in its state directory so a killed peer resumes mid-round safely.

Layout of `<state_dir>/node/`::

    state.json                 the phase of every round this peer touched and what it sent (atomic rewrite)
    rounds/<r>/update.bin      the canonical update it trained for round r (re-used on restart: an honest
    rounds/<r>/sealed.bin      peer never publishes two different updates for one round)

Every write is temp file + fsync + rename, so a crash leaves either the old or the new file, never half.
The file is a hint, never the authority: before committing or voting the node also asks the chain
(a transaction may have been mined after the last local write).
"""
from __future__ import annotations

import enum
import json
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from peer.errors import PeerError

STATE_VERSION = 1


class Phase(str, enum.Enum):
    """A round's progress on this peer, in protocol order."""

    NEW = "new"
    MODEL = "model"              # global model M(r-1) fetched and verified
    TRAINED = "trained"          # canonical update written to rounds/<r>/update.bin
    SEALED = "sealed"            # sealed blob written to rounds/<r>/sealed.bin
    PUBLISHED = "published"      # sealed blob on IPFS (cid known) and gossiped
    COMMITTED = "committed"      # commit tx mined (or seen on chain)
    NO_COMMIT = "no_commit"      # the commit window closed before we could commit: we still vote
    COLLECTED = "collected"      # every committed blob fetched / judged
    VOTED = "voted"              # vote tx mined (or seen on chain)
    ABSTAINED = "abstained"      # round not aggregatable or vote window closed: we do not vote
    FINALIZED = "finalized"
    FAILED = "failed"

    @property
    def order(self) -> int:
        return _ORDER[self]

    @property
    def settled(self) -> bool:
        return self in (Phase.FINALIZED, Phase.FAILED)


_ORDER = {p: i for i, p in enumerate(Phase)}
_ORDER[Phase.NO_COMMIT] = _ORDER[Phase.COMMITTED]
_ORDER[Phase.ABSTAINED] = _ORDER[Phase.VOTED]


@dataclass
class RoundRecord:
    """This peer's view of one round (hex strings for bytes, so the JSON stays readable)."""

    round: int
    phase: Phase = Phase.NEW
    model_hash: str | None = None          # M(r-1) we trained on
    update_hash: str | None = None
    sealed_sha256: str | None = None
    cid: str | None = None
    num_samples: int | None = None
    epsilon: float | None = None
    delta: float | None = None
    commit_tx: str | None = None
    commit_gas: int | None = None
    digest: str | None = None
    aggregate_hash: str | None = None
    aggregate_cid: str | None = None
    rewards_cid: str | None = None
    excluded: list[str] = field(default_factory=list)
    equivocations: dict[str, str] = field(default_factory=dict)  # peer -> update hash it gossiped ≠ committed
    vote_tx: str | None = None
    vote_gas: int | None = None
    close_tx: str | None = None
    accuracy: float | None = None          # of the global model M(r) once finalized
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["phase"] = self.phase.value
        return doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "RoundRecord":
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        known["phase"] = Phase(known.get("phase", Phase.NEW.value))
        return cls(**known)


class StateError(PeerError):
    """The state directory is unusable (belongs to another federation or identity, unreadable)."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class PeerState:
    """The persisted per-peer state: one `RoundRecord` per round, plus the binding (federation, address)."""

    def __init__(self, state_dir: str | os.PathLike, *, federation: str, address: str) -> None:
        self.dir = Path(state_dir) / "node"
        self.path = self.dir / "state.json"
        self.federation = federation
        self.address = address
        self.rounds: dict[int, RoundRecord] = {}
        self.meta: dict[str, Any] = {}       # node-wide facts, e.g. the DP privacy history
        self._load()

    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            doc = json.loads(self.path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise StateError(f"cannot read peer state {self.path}: {exc}") from exc
        if doc.get("federation", "").lower() != self.federation.lower():
            raise StateError(
                f"{self.path} belongs to federation {doc.get('federation')}, not {self.federation}; "
                "use a fresh state directory (or remove the node/ folder) for another federation"
            )
        if doc.get("address", "").lower() != self.address.lower():
            raise StateError(f"{self.path} belongs to peer {doc.get('address')}, not {self.address}")
        self.rounds = {int(k): RoundRecord.from_json(v) for k, v in doc.get("rounds", {}).items()}
        self.meta = dict(doc.get("meta", {}))

    def save(self) -> None:
        doc = {
            "version": STATE_VERSION,
            "federation": self.federation,
            "address": self.address,
            "meta": self.meta,
            "rounds": {str(r): rec.to_json() for r, rec in sorted(self.rounds.items())},
        }
        atomic_write_bytes(self.path, (json.dumps(doc, indent=1) + "\n").encode())

    def record(self, round: int) -> RoundRecord:
        if round not in self.rounds:
            self.rounds[round] = RoundRecord(round=round)
        return self.rounds[round]

    def advance(self, rec: RoundRecord, phase: Phase, **fields: Any) -> None:
        """Set fields, move to `phase` (never backwards) and persist."""
        for key, value in fields.items():
            setattr(rec, key, value)
        if phase.order >= rec.phase.order or phase.settled:
            rec.phase = phase
        self.save()

    def update(self, rec: RoundRecord, **fields: Any) -> None:
        for key, value in fields.items():
            setattr(rec, key, value)
        self.save()

    # --- round artefacts -------------------------------------------------------------------------

    def _artefact(self, round: int, name: str) -> Path:
        return self.dir / "rounds" / str(round) / name

    def write_artefact(self, round: int, name: str, data: bytes) -> None:
        atomic_write_bytes(self._artefact(round, name), data)

    def read_artefact(self, round: int, name: str) -> bytes | None:
        path = self._artefact(round, name)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None

    def __iter__(self) -> Iterator[RoundRecord]:
        return iter(sorted(self.rounds.values(), key=lambda r: r.round))
