"""What a peer has done, persisted in its state directory so a killed peer resumes mid-round safely.

Layout of `<state_dir>/node/`::

    state.json                 the phase of every round this peer touched and what it sent (atomic rewrite)
    rounds/<r>/update.bin      the canonical update it trained for round r (re-used on restart: an honest
    rounds/<r>/sealed.bin      peer never publishes two different updates for one round)

Every write is temp file + fsync + rename, so a crash leaves either the old or the new file, never half.
The file is a hint, never the authority: before committing or voting — and before skipping either because the
file says it is done — the node asks the chain (`peer.loop.reconcile`). A sent transaction is recorded with
its hash and `commit_status` / `vote_status` "pending" until it is `confirmations` blocks deep, then
"confirmed"; the phase says COMMITTED / VOTED only once confirmed, and a transaction the chain no longer
holds is taken back out of the file (the phase rewound), never left claimed.
"""
from __future__ import annotations

import enum
import errno
import functools
import json
import math
import os
import re
import tempfile
import types
import typing
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from consensus.bounded_json import BoundedJsonError, loads_bounded
from peer.errors import PeerError

STATE_VERSION = 1
MAX_STATE_BYTES = 256 << 20     # ~2 KB per round: generous, but a bound before parsing
_MAX_STATE_DEPTH = 16
_ROUND_KEY = re.compile(r"[0-9]{1,20}")
_STATE_HINT = ("restore it from a backup, or move the node/ folder away to start this peer afresh "
               "(the chain keeps what it already sent)")


class Phase(str, enum.Enum):
    """A round's progress on this peer, in protocol order."""

    NEW = "new"
    MODEL = "model"              # global model M(r-1) fetched and verified
    TRAINED = "trained"          # canonical update written to rounds/<r>/update.bin
    SEALED = "sealed"            # sealed blob written to rounds/<r>/sealed.bin
    PUBLISHED = "published"      # sealed blob on IPFS (cid known) and gossiped
    COMMITTED = "committed"      # commit tx on chain at the confirmation depth
    NO_COMMIT = "no_commit"      # the commit window closed before we could commit: we still vote
    COLLECTED = "collected"      # every committed blob fetched / judged
    VOTED = "voted"              # vote tx on chain at the confirmation depth
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
    commit_status: str | None = None       # "pending" (sent, not yet deep enough) | "confirmed"
    commit_gas: int | None = None
    digest: str | None = None
    aggregate_hash: str | None = None
    aggregate_cid: str | None = None
    rewards_cid: str | None = None
    excluded: list[str] = field(default_factory=list)
    equivocations: dict[str, str] = field(default_factory=dict)  # peer -> update hash it gossiped ≠ committed
    vote_tx: str | None = None
    vote_status: str | None = None         # "pending" | "confirmed", as commit_status
    vote_gas: int | None = None
    close_tx: str | None = None
    verdict_start: int | None = None       # round start on chain when NO_COMMIT/ABSTAINED was judged from its window
    accuracy: float | None = None          # of the global model M(r) once finalized
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["phase"] = self.phase.value
        return doc

    @classmethod
    def from_json(cls, doc: Any) -> "RoundRecord":
        """A record from its JSON form, every known field type-checked; ValueError naming the first bad one.

        Unknown keys are ignored (a newer peer may add fields); missing ones take their defaults."""
        if not isinstance(doc, dict):
            raise ValueError(f"a round record must be an object, not {type(doc).__name__}")
        hints = _field_types()
        known = {k: v for k, v in doc.items() if k in cls.__dataclass_fields__}
        if "round" not in known:
            raise ValueError("a round record lacks 'round'")
        for name, value in known.items():
            if name != "phase" and not _has_type(value, hints[name]):
                raise ValueError(f"field {name!r} = {_short(value)} is not {_type_name(hints[name])}")
        try:
            known["phase"] = Phase(known.get("phase", Phase.NEW.value))
        except (ValueError, TypeError):
            raise ValueError(f"unknown phase {_short(known.get('phase'))} (one of "
                             f"{', '.join(p.value for p in Phase)})") from None
        return cls(**known)


@functools.cache
def _field_types() -> dict[str, Any]:
    return typing.get_type_hints(RoundRecord)


def _has_type(value: Any, hint: Any) -> bool:
    """Does a JSON value match a field's annotation (int, float, str, X | None, list[X], dict[str, X])?"""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (types.UnionType, typing.Union):
        return any(_has_type(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**256
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        return isinstance(value, list) and all(_has_type(v, args[0]) for v in value)
    if origin is dict:
        return isinstance(value, dict) and all(_has_type(k, args[0]) and _has_type(v, args[1])
                                               for k, v in value.items())
    return isinstance(value, hint)


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


class StateError(PeerError):
    """The state directory is unusable (belongs to another federation or identity, unreadable, malformed)."""


#: errnos that mean "this disk cannot take the write" (full, over quota, read-only, no permission, failing):
#: retrying cannot help, so the peer stops instead of looping through rounds it cannot record.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO})


class DiskError(PeerError, OSError):
    """Writing under the state directory failed for a reason only the operator can fix; names the path.
    Still an OSError, so callers outside the peer loop that handle write failures see no change."""

    def __init__(self, path: Path, exc: OSError) -> None:
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        super().__init__(f"cannot write {path}: {exc.strerror or exc} ({code})")
        self.path = path
        self.errno = exc.errno


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (temp file + fsync + rename); DiskError for a full, read-only or
    forbidden disk."""
    try:
        _atomic_write(path, data)
    except OSError as exc:
        if exc.errno in DISK_ERRNOS:
            raise DiskError(path, exc) from exc
        raise


def _atomic_write(path: Path, data: bytes) -> None:
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
            doc = loads_bounded(self.path.read_bytes(), max_bytes=MAX_STATE_BYTES, max_depth=_MAX_STATE_DEPTH,
                                what="the file")
        except OSError as exc:
            raise StateError(f"cannot read peer state {self.path}: {exc.strerror or exc}") from exc
        except BoundedJsonError as exc:
            raise StateError(f"peer state {self.path} is unreadable: {exc}; {_STATE_HINT}") from None
        if not isinstance(doc, dict):
            raise self._malformed(f"the top level is {type(doc).__name__}, not an object")
        federation, address = doc.get("federation"), doc.get("address")
        if not isinstance(federation, str) or not isinstance(address, str):
            raise self._malformed("'federation' and 'address' must be strings")
        if federation.lower() != self.federation.lower():
            raise StateError(
                f"{self.path} belongs to federation {federation}, not {self.federation}; "
                "use a fresh state directory (or remove the node/ folder) for another federation"
            )
        if address.lower() != self.address.lower():
            raise StateError(f"{self.path} belongs to peer {address}, not {self.address}")
        version = doc.get("version", STATE_VERSION)
        if version != STATE_VERSION:
            raise self._malformed(f"version {_short(version)}, this peer reads version {STATE_VERSION}")
        self.rounds = self._parse_rounds(doc.get("rounds", {}))
        meta = doc.get("meta", {})
        if not isinstance(meta, dict):
            raise self._malformed("'meta' must be an object")
        history = meta.get("privacy_history", [])
        if not _has_type(history, list[list[float]]):
            raise self._malformed("'meta.privacy_history' must be a list of number lists")
        self.meta = dict(meta)

    def _parse_rounds(self, rounds: Any) -> dict[int, RoundRecord]:
        if not isinstance(rounds, dict):
            raise self._malformed("'rounds' must be an object of round number -> record")
        out = {}
        for key, value in rounds.items():
            if not _ROUND_KEY.fullmatch(key) or int(key) >= 2**64:
                raise self._malformed(f"round key {_short(key)} is not a round number")
            try:
                rec = RoundRecord.from_json(value)
            except ValueError as exc:
                raise self._malformed(f"round {key}: {exc}") from None
            if rec.round != int(key):
                raise self._malformed(f"round {key} holds the record of round {rec.round}")
            out[int(key)] = rec
        return out

    def _malformed(self, what: str) -> StateError:
        return StateError(f"peer state {self.path} is malformed: {what}; {_STATE_HINT}")

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

    def rewind(self, rec: RoundRecord, phase: Phase, **fields: Any) -> None:
        """Set fields, move back to `phase` and persist: the chain no longer holds what the record claimed."""
        for key, value in fields.items():
            setattr(rec, key, value)
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
