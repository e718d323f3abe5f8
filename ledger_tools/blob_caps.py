"""How many bytes each kind of blob read from IPFS may have, and the checked fetch of a model blob.

A CID in a finalized round or a commitment is chosen by whoever published it, so its size is too: every read
passes a cap for its kind before any parser sees the bytes (`BlobStore.cat(max_bytes=…)` stops reading past
it). Caps follow the federation's model spec where it is known — a canonical model has exactly one size — and
fall back to the store's default otherwise. Reward trees have their own bound (consensus.merkle).

Errors, one per kind, each caught by its callers: `ModelBlobError` (genesis and aggregated models, here),
`RewardTreeError` (ledger_tools.audit.rewards), `UpdateUnusable` (ledger_tools.updates, committed updates).
"""
from __future__ import annotations

from typing import Any

import consensus
from consensus.merkle import MAX_REWARD_TREE_BYTES
from ledger_tools.blobstore import DEFAULT_MAX_BLOB_BYTES, BlobStoreError
from ledger_tools.errors import LedgerToolsError

#: The canonical blob's fixed preamble (magic, version, scale, reserved, table length): consensus/codec.py.
CANONICAL_PREAMBLE_BYTES = 12
#: Sealed blob layout (peer/crypto/seal.py): 68-byte fixed header + 16-byte payload tag, 144 bytes per recipient,
#: at most 0xFFFF recipients. Restated here because ledger_tools may not import peer; a test keeps them equal.
SEAL_FIXED_BYTES = 68 + 16
SEAL_WRAP_BYTES = 144
SEAL_MAX_RECIPIENTS = 0xFFFF
REWARD_TREE_CAP = MAX_REWARD_TREE_BYTES


class ModelBlobError(LedgerToolsError):
    """A model blob (genesis or finalized aggregate) cannot be fetched, is too large, or is not canonical."""


def model_blob_cap(spec: consensus.ModelSpec | None) -> int:
    """The exact size of a canonical model of `spec` (every one has the same); the store default without one."""
    if spec is None:
        return DEFAULT_MAX_BLOB_BYTES
    return CANONICAL_PREAMBLE_BYTES + len(spec.table_bytes()) + 4 * spec.num_params


def sealed_update_cap(spec: consensus.ModelSpec | None, recipients: int | None = None) -> int:
    """Largest sealed update: a canonical update of `spec` sealed for `recipients` (default: the format's max)."""
    if spec is None:
        return DEFAULT_MAX_BLOB_BYTES
    k = SEAL_MAX_RECIPIENTS if recipients is None else recipients
    return model_blob_cap(spec) + SEAL_FIXED_BYTES + SEAL_WRAP_BYTES * k


def fetch_model(store: Any, cid: str, expected_sha256: bytes, spec: consensus.ModelSpec | None = None) -> bytes:
    """Model bytes from IPFS: capped for `spec`, hash-checked by the store, then checked to be a canonical blob
    (of `spec`, when given) before any caller decodes it. ModelBlobError for anything wrong."""
    try:
        data = store.cat(cid, expected_sha256=expected_sha256, max_bytes=model_blob_cap(spec))
    except BlobStoreError as exc:
        raise ModelBlobError(f"model {cid}: {exc}") from exc
    try:
        consensus.decode_ints(data, spec=spec)
    except consensus.CodecError as exc:
        raise ModelBlobError(f"model {cid} is not a canonical model blob: {exc}") from exc
    return data
