"""The global model M(r-1): its hash from the chain, its bytes from the local cache or IPFS, sha256-checked.

Models are cached by hash under `<state_dir>/node/models/`, so a restarted peer (or the next round's fetch
of the model this peer just aggregated itself) costs no IPFS round trip; a cached file is still re-hashed
before use, so a corrupted cache falls back to IPFS instead of training on wrong bytes.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from ledger_tools.chain import FederationLedger, GlobalModel
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
        """M(round-1), the model round `round` trains and aggregates on: (canonical bytes, sha256).

        The chain's current model is M(round-1) only while `round` is not finalized: when the others finalized it
        before this read (a late vote, a vote re-sent after a chain restart) it is M(round), and an outcome
        computed from it has another digest than the chain's. Then M(round-1) is taken from the last
        finalization before `round` (the genesis model if none)."""
        model = self.retry("read model", self.ledger.model, round=round)
        if model.round >= round:
            model = self.retry("read model", lambda: self._model_before(round), round=round)
        data = self.cached(model.hash)
        if data is not None:
            return data, model.hash
        t = Timer()
        data = self.retry(f"ipfs cat {model.cid}", lambda: self.blobstore.cat(
            model.cid, expected_sha256=model.hash, max_bytes=self.max_bytes), round=round)
        self.cache(data)
        self.nlog.event(round, "model", "fetched", elapsed=t.elapsed, message=f"M({model.round}) from IPFS {model.cid}")
        return data, model.hash

    def _model_before(self, round: int) -> GlobalModel:
        for k in range(round - 1, 0, -1):
            fin = self.ledger.finalization(k)
            if fin is not None:
                return GlobalModel(k, fin.aggregate_hash, fin.aggregate_cid)
        p = self.ledger.params()
        return GlobalModel(0, p.genesis_model_hash, p.genesis_model_cid)
