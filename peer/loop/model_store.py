"""The global model M(r-1): its hash from the chain, its bytes from the local cache or IPFS, sha256-checked.

Models are cached by hash under `<state_dir>/node/models/`, so a restarted peer (or the next round's fetch
of the model this peer just aggregated itself) costs no IPFS round trip; a cached file is still re-hashed
before use, so a corrupted cache falls back to IPFS instead of training on wrong bytes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ledger_tools.chain import FederationLedger
from peer.loop.log import NodeLog, Timer
from peer.loop.retry import Retrier
from peer.loop.state import atomic_write_bytes


class ModelStore:
    def __init__(self, models_dir: Path, *, ledger: FederationLedger, blobstore, retry: Retrier,
                 nlog: NodeLog, max_bytes: int | None = None) -> None:
        """`max_bytes`: the exact size of a canonical model of the federation's spec
        (`ledger_tools.blob_caps.model_blob_cap`); a fetch stops reading past it. None: the store's default."""
        self.dir = Path(models_dir)
        self.max_bytes = max_bytes
        self.ledger = ledger
        self.blobstore = blobstore
        self.retry = retry
        self.nlog = nlog

    def _path(self, model_hash: bytes) -> Path:
        return self.dir / f"{model_hash.hex()}.bin"

    def cache(self, data: bytes) -> bytes:
        """Keep canonical model bytes; returns their sha256."""
        h = hashlib.sha256(data).digest()
        path = self._path(h)
        if not path.exists():
            atomic_write_bytes(path, data)
        return h

    def cached(self, model_hash: bytes) -> bytes | None:
        path = self._path(model_hash)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return None
        return data if hashlib.sha256(data).digest() == model_hash else None

    def current(self, round: int) -> tuple[bytes, bytes]:
        """The chain's current global model (M(round-1) while round is open): (canonical bytes, sha256)."""
        model = self.retry("read model", self.ledger.model, round=round)
        data = self.cached(model.hash)
        if data is not None:
            return data, model.hash
        t = Timer()
        data = self.retry(f"ipfs cat {model.cid}", lambda: self.blobstore.cat(
            model.cid, expected_sha256=model.hash, max_bytes=self.max_bytes), round=round)
        self.cache(data)
        self.nlog.event(round, "model", "fetched", elapsed=t.elapsed, message=f"M({model.round}) from IPFS {model.cid}")
        return data, model.hash
