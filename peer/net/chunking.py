"""Split a sealed blob into signed gossip chunks and put it back together, checking its sha256."""
from __future__ import annotations

import hashlib

from eth_account.signers.local import LocalAccount

from peer.net.envelope import BlobChunk, Envelope, EnvelopeError

DEFAULT_CHUNK_SIZE = 512 * 1024  # leaves ample room under libp2p's 1 MiB message limit


def chunk_count(blob_size: int, chunk_size: int) -> int:
    return max(1, -(-blob_size // chunk_size))


def split_blob(
    account: LocalAccount, envelope: Envelope, sealed_blob: bytes, chunk_size: int = DEFAULT_CHUNK_SIZE
) -> list[BlobChunk]:
    """Signed chunks of ``sealed_blob``, bound to ``envelope`` (same federation, round, sender, hashes)."""
    if chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    if account.address != envelope.sender:
        raise EnvelopeError(f"account {account.address} is not the envelope's sender {envelope.sender}")
    if len(sealed_blob) != envelope.blob_size or hashlib.sha256(sealed_blob).digest() != envelope.blob_sha256:
        raise EnvelopeError("sealed blob does not match the envelope's blob_sha256 / blob_size")
    count = chunk_count(len(sealed_blob), chunk_size)
    return [
        BlobChunk(
            federation=envelope.federation, chain_id=envelope.chain_id, round=envelope.round,
            sender=envelope.sender, update_hash=envelope.update_hash, blob_sha256=envelope.blob_sha256,
            blob_size=envelope.blob_size, index=i, count=count,
            data=sealed_blob[i * chunk_size : (i + 1) * chunk_size],
        ).signed_by(account)
        for i in range(count)
    ]


class BlobAssembly:
    """Collects the chunks of one (sender, update hash, blob sha256); ``blob`` is set once complete and verified.

    The first chunk fixes ``count``; a chunk that disagrees with it or overflows ``blob_size`` is refused.
    If the completed bytes do not hash to ``blob_sha256`` the assembly is marked ``failed`` (the sender
    signed inconsistent chunks: evidence of a faulty peer).
    """

    def __init__(self, first: BlobChunk) -> None:
        self.sender = first.sender
        self.round = first.round
        self.update_hash = first.update_hash
        self.blob_sha256 = first.blob_sha256
        self.blob_size = first.blob_size
        self.count = first.count
        # Non-empty chunks (checked in add) bound the parts kept to blob_size bytes in at most count pieces.
        self.failed = first.count > max(1, first.blob_size)
        self.parts: dict[int, bytes] = {}
        self.received_bytes = 0
        self.blob: bytes | None = None

    @property
    def key(self) -> tuple[str, bytes, bytes]:
        return (self.sender, self.update_hash, self.blob_sha256)

    def add(self, chunk: BlobChunk) -> bool:
        """Add a chunk; True if it was new and consistent."""
        if self.blob is not None or self.failed:
            return False
        if (chunk.sender, chunk.update_hash, chunk.blob_sha256) != self.key or chunk.count != self.count \
                or chunk.blob_size != self.blob_size or chunk.index in self.parts:
            return False
        if self.received_bytes + len(chunk.data) > self.blob_size or (self.blob_size and not chunk.data):
            return False
        self.parts[chunk.index] = chunk.data
        self.received_bytes += len(chunk.data)
        if len(self.parts) == self.count:
            blob = b"".join(self.parts[i] for i in range(self.count))
            self.parts.clear()
            if len(blob) == self.blob_size and hashlib.sha256(blob).digest() == self.blob_sha256:
                self.blob = blob
            else:
                self.failed = True
        return True
