"""The peer's own blob fetches use the spec-derived caps of `ledger_tools.blob_caps` (issue 12, deliverable 2),
not the store's 256 MiB default: the global model one byte over a canonical model's size is refused by a real
IPFS node's streaming read (`BlobTooLarge`), never loaded into the model cache; exactly the size is fetched."""
from __future__ import annotations

import hashlib

import pytest

import consensus
from ledger_tools.blob_caps import model_blob_cap
from ledger_tools.blobstore import BlobTooLarge
from ledger_tools.chain.records import GlobalModel
from peer.learning.tasks import get_task
from peer.loop.log import NodeLog
from peer.loop.model_store import ModelStore
from peer.loop.retry import Retrier


class _Ledger:
    def __init__(self, model: GlobalModel) -> None:
        self._model = model

    def model(self) -> GlobalModel:
        return self._model


def _store(tmp_path, ipfs_store, blob: bytes) -> ModelStore:
    spec = get_task("digits").model_spec()
    ledger = _Ledger(GlobalModel(3, hashlib.sha256(blob).digest(), ipfs_store.add(blob)))
    retry = Retrier(NodeLog("0x" + "aa" * 20, "t"), sleep=lambda s: None, should_stop=lambda: False)
    return ModelStore(tmp_path / "models", ledger=ledger, blobstore=ipfs_store, retry=retry,
                      nlog=NodeLog("0x" + "aa" * 20, "t"), max_bytes=model_blob_cap(spec))


def test_global_model_one_byte_over_the_spec_cap_is_refused(tmp_path, ipfs_store):
    task = get_task("digits")
    model = consensus.encode(task.genesis_state())
    cap = model_blob_cap(task.model_spec())
    assert len(model) == cap
    data, _ = _store(tmp_path / "ok", ipfs_store, model).current(4)
    assert data == model

    over = model + b"\0"
    store = _store(tmp_path / "over", ipfs_store, over)
    with pytest.raises(BlobTooLarge, match=f"larger than the {cap} bytes"):
        store.current(4)
    assert not any((tmp_path / "over" / "models").glob("*")), "nothing of the oversized blob was cached"
