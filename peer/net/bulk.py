"""Bulk bytes between members: a committed sealed blob requested over a libp2p stream, not gossiped in chunks.

Gossip carries the small signed envelope (sender, update hash, ``blob_sha256``, ``blob_size``); the blob itself
moves over ``/fedledger/blob/1``, a request/response stream protocol on the same libp2p host (same Noise
channel, same connections the gossip dialler keeps to every member). GossipSub is built for small messages:
over 512 KiB chunks paced below its per-topic spam limit a 44 MB update took 11 s per publisher; one stream
is limited only by the link and the crypto.

Wire (big-endian)::

    request   "FLBR" | version u8 | sender (20) | update_hash (32) | blob_sha256 (32)
    response  status u8 (0 = here it is, 1 = not held) | size u64 | size bytes      (status 1: nothing after)

A provider serves only blobs it holds *verified* (its own, or one it fetched and checked). A requester asks
for exactly the blob a signed envelope names, refuses a size other than the envelope's ``blob_size`` or above
its cap before reading, hashes while it reads, and writes to a spool file, never holding the blob twice; the
result is used only if it matches ``blob_sha256``. Anything wrong is a failed fetch (the collector then falls
back to IPFS), never an exception out of the node.
"""
from __future__ import annotations

import hashlib
import logging
import os
import shutil
import struct
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import trio
from libp2p.custom_types import TProtocol

from peer.tempdirs import owned_tempdir

PROTOCOL = TProtocol("/fedledger/blob/1")
MAGIC = b"FLBR"
VERSION = 1
_REQUEST = struct.Struct(">4sB20s32s32s")
_RESPONSE = struct.Struct(">BQ")
FOUND, NOT_HELD = 0, 1
PIECE = 1 << 20  # bytes per stream write / read

log = logging.getLogger("fedledger.gossip")


class BulkError(Exception):
    """A fetch that failed: stream error, cut or timeout (reason in the text); that provider may do better later."""


class BulkMismatch(BulkError):
    """The provider answered with another size or other bytes than the signed envelope names: not asked again."""


@dataclass(frozen=True)
class BlobKey:
    """What a signed envelope names: whose blob, which update, which exact bytes."""

    sender: bytes  # 20-byte address
    update_hash: bytes
    blob_sha256: bytes

    def request(self) -> bytes:
        return _REQUEST.pack(MAGIC, VERSION, self.sender, self.update_hash, self.blob_sha256)

    @classmethod
    def parse(cls, data: bytes) -> BlobKey:
        if len(data) != _REQUEST.size:
            raise BulkError(f"request of {len(data)} bytes")
        magic, version, sender, update_hash, blob_sha256 = _REQUEST.unpack(data)
        if magic != MAGIC or version != VERSION:
            raise BulkError("not a blob request")
        return cls(sender, update_hash, blob_sha256)


#: (key) -> path of a verified blob this node holds, or None.
Lookup = Callable[[BlobKey], "Path | None"]


async def _read_exactly(stream, n: int) -> bytes:
    parts, got = [], 0
    while got < n:
        data = await stream.read(min(PIECE, n - got))
        if not data:
            raise BulkError(f"stream ended after {got} of {n} bytes")
        parts.append(data)
        got += len(data)
    return b"".join(parts)


async def serve(stream, lookup: Lookup, limiter: trio.CapacityLimiter, timeout: float = 120.0) -> None:
    """Stream handler: answer one request from the spool (at most `limiter` uploads at once)."""
    try:
        with trio.fail_after(timeout):
            key = BlobKey.parse(await _read_exactly(stream, _REQUEST.size))
            path = lookup(key)
            if path is None:
                await stream.write(_RESPONSE.pack(NOT_HELD, 0))
                await stream.close()
                return
            async with limiter:
                with open(path, "rb") as fh:
                    size = os.fstat(fh.fileno()).st_size
                    await stream.write(_RESPONSE.pack(FOUND, size))
                    while piece := fh.read(PIECE):
                        await stream.write(piece)
            await stream.close()
    except Exception as exc:  # noqa: BLE001 - libp2p stream errors share no base class; a bad request or a
        # requester that went away must never reach the host's handler nursery
        log.debug("blob request not served: %r", exc)
        await _reset(stream)


async def _reset(stream) -> None:
    try:
        await stream.reset()
    except Exception:  # noqa: BLE001 - the stream is already gone
        pass


async def fetch(open_stream: Callable[[], Awaitable[object]], key: BlobKey, size: int, dest: Path,
                timeout: float) -> bool:
    """Ask one provider for `key`; write the verified blob to `dest`. True = fetched; False = not held there.

    Raises BulkError for a provider that answered wrongly (size, bytes, stream cut) or too slowly; `dest` is
    removed unless the fetch succeeded.
    """
    ok = False
    try:
        with trio.fail_after(timeout):
            stream = await open_stream()
            try:
                await stream.write(key.request())
                status, announced = _RESPONSE.unpack(await _read_exactly(stream, _RESPONSE.size))
                if status == NOT_HELD:
                    return False
                if status != FOUND or announced != size:
                    raise BulkMismatch(f"provider offers {announced} bytes, the envelope says {size}")
                digest = hashlib.sha256()
                with open(dest, "wb") as fh:
                    got = 0
                    while got < size:
                        data = await stream.read(min(PIECE, size - got))
                        if not data:
                            raise BulkError(f"stream ended after {got} of {size} bytes")
                        digest.update(data)
                        fh.write(data)
                        got += len(data)
                if digest.digest() != key.blob_sha256:
                    raise BulkMismatch("bytes do not match the envelope's blob_sha256")
                ok = True
            finally:
                await _reset(stream) if not ok else await stream.close()
        return True
    except trio.TooSlowError as exc:
        raise BulkError(f"no complete answer within {timeout} s") from exc
    except BulkError:
        raise
    except Exception as exc:  # noqa: BLE001 - libp2p stream/dial errors have no common base class
        raise BulkError(f"stream failed: {exc!r}") from exc
    finally:
        if not ok:
            dest.unlink(missing_ok=True)


SPOOL_PREFIX = "fedledger-blobs-"


class BlobSpool:
    """Verified sealed blobs on disk, one file per (sender, update hash, blob sha256), so a node holds n large
    blobs without n copies in memory; removed with the node (or the process).

    The spool dir is `<directory>/fedledger-blobs-<pid>-<random>` (default directory: the system temp dir; a peer
    passes `<state_dir>/blobs`). A process killed with SIGKILL cannot remove its spool, so a new spool first removes
    the spools in the same directory whose process is gone (`peer.tempdirs`): one killed run can hold n members'
    updates, GBs, and they used to pile up in /tmp.
    """

    def __init__(self, directory: str | Path | None = None) -> None:
        self.directory = owned_tempdir(SPOOL_PREFIX, directory)
        self._cleanup = weakref.finalize(self, shutil.rmtree, self.directory, True)

    def path(self, key: BlobKey) -> Path:
        return self.directory / hashlib.sha256(key.sender + key.update_hash + key.blob_sha256).hexdigest()

    def write(self, key: BlobKey, data: bytes) -> Path:
        path = self.path(key)
        tmp = path.with_suffix(".part")
        tmp.write_bytes(data)
        tmp.replace(path)
        return path

    @staticmethod
    def read(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:  # forgotten (round window moved on) or the node stopped
            return None

    def close(self) -> None:
        self._cleanup()
