"""From a commitment to its canonical update bytes: fetch by CID, unseal, check the committed hash.

The one path by which peers (collect), auditors (verify) and the simulator obtain a committed update, so all
three reject exactly the same blobs. Unsealing is the caller's (`ledger_tools` does not know the peer's keys):
an `Unseal` turns (sealed bytes, sender, round) into canonical bytes and raises a `ValueError` (the peer's
`SealError`, a codec error) for anything wrong.
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol

from consensus.commitment import Commitment
from ledger_tools.blobstore import BlobIntegrityError, BlobStoreError, BlobTooLarge
from ledger_tools.errors import LedgerToolsError

#: unseal(sealed_blob, sender, round) -> canonical update bytes; raises ValueError on anything wrong.
Unseal = Callable[[bytes, str, int], bytes]


class BlobReader(Protocol):
    def cat(self, cid: str, expected_sha256: bytes | str | None = None, *,
            max_bytes: int | None = None) -> bytes: ...


class UpdateUnusable(LedgerToolsError):
    """A committed update cannot be used; `kind` is a stable tag for reports, `detail` says what happened."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


def fetch_sealed(store: BlobReader, commitment: Commitment, *, max_bytes: int | None = None) -> bytes:
    """The sealed blob named by the commitment's CID, its bytes checked against the CID by the store.

    `max_bytes`: the cap for this blob (`ledger_tools.blob_caps.sealed_update_cap` of the federation's model
    spec); the store stops reading past it, so an oversized blob is refused before it is held in memory.
    None = the store's default cap."""
    try:
        return store.cat(commitment.cid, max_bytes=max_bytes)
    except BlobIntegrityError as exc:
        raise UpdateUnusable("blob-cid-mismatch", f"bytes served for {commitment.cid} do not match the CID "
                                                  f"({exc})") from exc
    except BlobTooLarge as exc:
        raise UpdateUnusable("blob-too-large", str(exc)) from exc
    except BlobStoreError as exc:
        raise UpdateUnusable("blob-unavailable", f"cannot fetch {commitment.cid}: {exc}") from exc


def open_update(sealed: bytes, commitment: Commitment, unseal: Unseal) -> bytes:
    """Unseal a blob for the commitment's sender and round and check it hashes to the committed update hash."""
    try:
        update = unseal(sealed, commitment.member, commitment.round)
    except ValueError as exc:
        raise UpdateUnusable("unseal-failed", f"{type(exc).__name__}: {exc}") from exc
    got = hashlib.sha256(update).digest()
    if got != commitment.update_hash:
        raise UpdateUnusable("update-hash-mismatch", f"committed 0x{commitment.update_hash.hex()[:12]}… but the "
                                                     f"blob at {commitment.cid} unseals to 0x{got.hex()[:12]}…")
    return update


def fetch_update(store: BlobReader, commitment: Commitment, unseal: Unseal, *, max_bytes: int | None = None) -> bytes:
    """The commitment's canonical update bytes, or UpdateUnusable saying why not (`max_bytes`: see
    `fetch_sealed`)."""
    return open_update(fetch_sealed(store, commitment, max_bytes=max_bytes), commitment, unseal)
