"""Blob store: content-addressed storage of sealed updates, models and reward trees.

One small interface (`BlobStore`) with two implementations that produce the same CIDs:

* `IpfsBlobStore(api_url)` — any node speaking the Kubo RPC API (the bundled js-ipfs devnet node, a
  production Kubo node or cluster), addressed by URL or multiaddr only.
* `InMemoryBlobStore()` — a dict, for the in-process simulator and unit tests.

Blobs are added as UnixFS files with CIDv1, raw leaves and the default 256 KiB chunker, so a blob up to
256 KiB is a single raw block whose CID is `sha256(blob)` itself, and a larger one is a balanced DAG-PB tree
that `unixfs_cid` rebuilds locally. The node is never trusted: every blob fetched by `cat` is checked against
its CID (recomputed locally) and, when given, against the caller's `expected_sha256`, and a mismatch raises
`BlobIntegrityError`. Nor is the publisher trusted: `cat` stops reading past `max_bytes` (per call, else the
store's `max_blob_bytes`) and raises `BlobTooLarge`, so a hostile CID cannot make a reader allocate without bound.
"""
from __future__ import annotations

import hashlib
import logging
import re
import threading
import time
import warnings
from collections.abc import Callable, Iterable
from typing import Protocol, TypeVar, runtime_checkable
from urllib.parse import urlsplit

from multiformats import CID, multicodec, multihash, varint

from ledger_tools.errors import LedgerToolsError, Transient

log = logging.getLogger(__name__)

CHUNK_SIZE = 262_144                 # default UnixFS chunker (size-262144), Kubo and js-ipfs alike
MAX_LINKS_PER_NODE = 174             # balanced layout fan-out, Kubo and js-ipfs alike
_ADD_OPTS = {"cid-version": "1", "raw-leaves": "true", "cid-base": "base32", "pin": "true"}
#: Cap of a `cat` that names none (256 MiB: a 64M-parameter canonical model); callers pass tighter per-kind caps.
DEFAULT_MAX_BLOB_BYTES = 256 << 20

T = TypeVar("T")

# ipfshttpclient 0.7.0 passes urllib3 a `strict` argument that urllib3 2.x deprecates on every request.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)


class BlobStoreError(LedgerToolsError):
    """Base class of every blob store failure."""


class BlobStoreUnavailable(BlobStoreError, Transient):
    """The storage node did not answer (after retries)."""


class BlobIntegrityError(BlobStoreError):
    """Bytes returned for a CID do not match the CID or the expected hash: the node (or network) lied."""


class BlobNotFound(BlobStoreError):
    """The store does not hold the blob (in-memory store) or the node rejected the CID."""


class BlobTooLarge(BlobStoreError):
    """The blob is larger than the reader's cap for its kind: refused before it is read in full or parsed."""


def _check_cap(cid: str, size: int, max_bytes: int) -> None:
    if size > max_bytes:
        raise BlobTooLarge(f"blob {cid} is larger than the {max_bytes} bytes allowed for it")


# --------------------------------------------------------------------------------------------------
# CIDs, computed locally (the reason the node need not be trusted)


def raw_cid(data: bytes) -> str:
    """CIDv1 (base32) of `data` as a single raw block: `bafkrei…`."""
    return str(CID("base32", 1, "raw", multihash.digest(data, "sha2-256")))


def unixfs_cid(data: bytes) -> str:
    """CIDv1 that `ipfs add --cid-version=1 --raw-leaves` gives `data` (default chunker, balanced layout).

    Up to 256 KiB it is `raw_cid(data)`; beyond, a balanced tree of DAG-PB UnixFS file nodes over raw leaves,
    at most 174 links per node, encoded exactly as Kubo / js-ipfs encode it. Links are kept as binary CIDs
    (version and codec prefix + multihash); a `CID` object is built for the root only: building one per 256 KiB
    leaf cost more than hashing the leaf, and the CID of the own sealed update is on the round's critical path.
    """
    if len(data) <= CHUNK_SIZE:
        return raw_cid(data)
    view = memoryview(data)  # leaves hashed in place: no 256 KiB copies, one sha256 pass over the blob
    level = [
        _DagEntry(_RAW_V1 + multihash.wrap(hashlib.sha256(chunk).digest(), "sha2-256"), len(chunk), len(chunk))
        for chunk in (view[i:i + CHUNK_SIZE] for i in range(0, len(data), CHUNK_SIZE))
    ]
    while len(level) > 1:
        level = [_file_node(level[i:i + MAX_LINKS_PER_NODE]) for i in range(0, len(level), MAX_LINKS_PER_NODE)]
    return CID.decode(level[0].link).encode("base32")


#: binary CIDv1 prefixes (version, codec) of a raw leaf and of a DAG-PB node; the multihash follows
_RAW_V1 = varint.encode(1) + varint.encode(multicodec.get("raw").code)
_DAG_PB_V1 = varint.encode(1) + varint.encode(multicodec.get("dag-pb").code)


class _DagEntry:
    __slots__ = ("link", "file_size", "tree_size")

    def __init__(self, link: bytes, file_size: int, tree_size: int) -> None:
        self.link, self.file_size, self.tree_size = link, file_size, tree_size


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _file_node(children: list[_DagEntry]) -> _DagEntry:
    file_size = sum(c.file_size for c in children)
    unixfs = b"\x08\x02" + b"\x18" + _varint(file_size)          # Type=File, filesize
    unixfs += b"".join(b"\x20" + _varint(c.file_size) for c in children)  # blocksizes
    # DAG-PB canonical form: Links (field 2) before Data (field 1); each link = Hash, Name "", Tsize.
    links = b"".join(
        _field(2, _field(1, c.link) + b"\x12\x00" + b"\x18" + _varint(c.tree_size)) for c in children
    )
    block = links + _field(1, unixfs)
    link = _DAG_PB_V1 + multihash.digest(block, "sha2-256")
    return _DagEntry(link, file_size, len(block) + sum(c.tree_size for c in children))


def verify_blob(cid: str, data: bytes, expected_sha256: bytes | str | None = None) -> None:
    """Raise BlobIntegrityError unless `data` is what `cid` (and `expected_sha256`, if given) names.

    A raw CID is checked directly against its digest (any hash function multiformats implements);
    a DAG-PB CID against the locally rebuilt UnixFS tree. A DAG-PB CID built with another layout or chunker
    cannot be rebuilt: it is accepted only when `expected_sha256` vouches for the bytes.
    """
    if expected_sha256 is not None:
        want = (
            expected_sha256.hex() if isinstance(expected_sha256, bytes) else expected_sha256.lower().removeprefix("0x")
        )
        got = hashlib.sha256(data).hexdigest()
        if got != want:
            raise BlobIntegrityError(f"blob {cid}: sha256 {got} does not match the expected {want}")
    try:
        parsed = CID.decode(cid)
    except Exception as exc:  # multiformats raises several error types for a malformed CID
        raise BlobIntegrityError(f"{cid!r} is not a valid CID: {exc}") from exc
    if parsed.codec.name == "raw":
        try:
            recomputed = parsed.hashfun.digest(data, size=len(parsed.raw_digest))
        except KeyError as exc:
            raise BlobIntegrityError(f"blob {cid}: hash function {parsed.hashfun.name} is not supported") from exc
        if recomputed != parsed.digest:
            raise BlobIntegrityError(f"blob {cid}: returned bytes do not hash to the CID")
        return
    if parsed.codec.name == "dag-pb" and parsed.version == 1 and parsed.hashfun.name == "sha2-256":
        if CID.decode(unixfs_cid(data)) == parsed:
            return
        if expected_sha256 is None:
            raise BlobIntegrityError(f"blob {cid}: returned bytes do not rebuild the CID's UnixFS tree")
        return  # another chunker/layout, but the caller's sha256 matched
    if expected_sha256 is None:
        raise BlobIntegrityError(
            f"blob {cid}: cannot verify a {parsed.codec.name} CIDv{parsed.version} locally; pass expected_sha256"
        )


# --------------------------------------------------------------------------------------------------
# The interface


@runtime_checkable
class BlobStore(Protocol):
    """Content-addressed blob storage. CIDs are CIDv1 strings, identical across implementations."""

    def add(self, data: bytes, *, expected_cid: str | None = None) -> str:
        """Store `data` (pinned) and return its CID. `expected_cid`: the CID the caller already computed with
        `unixfs_cid(data)`; the store checks its answer against it instead of hashing the blob again."""

    def cat(self, cid: str, expected_sha256: bytes | str | None = None, *, max_bytes: int | None = None) -> bytes:
        """Return the bytes named by `cid`, verified locally; BlobIntegrityError if they do not match,
        BlobTooLarge if there are more than `max_bytes` of them (default: the store's cap)."""

    def pin(self, cid: str) -> None:
        """Keep `cid` (fetching it if needed) through garbage collection and restarts."""

    def has(self, cid: str) -> bool:
        """True when this store holds (pins) `cid` itself."""


class InMemoryBlobStore:
    """A dict-backed BlobStore with real IPFS CIDs (for the in-process simulator and unit tests)."""

    def __init__(self, max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        self._blobs: dict[str, bytes] = {}
        self.max_blob_bytes = max_blob_bytes

    def add(self, data: bytes, *, expected_cid: str | None = None) -> str:
        cid = unixfs_cid(bytes(data))
        if expected_cid is not None and CID.decode(expected_cid) != CID.decode(cid):
            raise BlobIntegrityError(f"blob whose CID is {cid} added as {expected_cid}")
        self._blobs[cid] = bytes(data)
        return cid

    def cat(self, cid: str, expected_sha256: bytes | str | None = None, *, max_bytes: int | None = None) -> bytes:
        try:
            data = self._blobs[cid]
        except KeyError:
            raise BlobNotFound(f"blob {cid} is not in the in-memory store") from None
        _check_cap(cid, len(data), self.max_blob_bytes if max_bytes is None else max_bytes)
        verify_blob(cid, data, expected_sha256)
        return data

    def pin(self, cid: str) -> None:
        if cid not in self._blobs:
            raise BlobNotFound(f"blob {cid} is not in the in-memory store")

    def has(self, cid: str) -> bool:
        return cid in self._blobs

    def __len__(self) -> int:
        return len(self._blobs)


# --------------------------------------------------------------------------------------------------
# Kubo RPC API client


def to_multiaddr(api_url: str) -> str:
    """Accept a multiaddr (`/ip4/…/tcp/5001/http`, `/dns/…`) or an http(s) URL and return a multiaddr."""
    if api_url.startswith("/"):
        return api_url
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"IPFS API address {api_url!r} is neither a multiaddr nor an http(s) URL")
    host = parts.hostname
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if re.fullmatch(r"\d+\.\d+\.\d+\.\d+", host):
        proto = "ip4"
    elif ":" in host:
        proto = "ip6"
    else:
        proto = "dns"
    return f"/{proto}/{host}/tcp/{port}/{parts.scheme}"


class IpfsBlobStore:
    """BlobStore over a node with the Kubo RPC API (ipfshttpclient 0.7.0), verifying every blob itself.

    Transient failures (connection refused/reset, timeouts, 5xx without a usable answer) are retried
    `retries` times with exponential backoff (`backoff`, doubling), then `BlobStoreUnavailable` is raised.

    Safe to share between threads: an ipfshttpclient `Client` (one requests session) is not thread-safe, so
    every thread gets a client of its own, created on its first call and closed by `close()`.
    """

    def __init__(self, api_url: str, timeout: float = 30, retries: int = 3, backoff: float = 0.5,
                 max_blob_bytes: int = DEFAULT_MAX_BLOB_BYTES) -> None:
        import ipfshttpclient  # local: keeps the module importable where only the in-memory store is used
        import requests
        import urllib3

        self.api_url = api_url
        self.max_blob_bytes = max_blob_bytes
        # Raised by the response body's iterator, which ipfshttpclient does not wrap: a dropped connection.
        self._read_errors = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError)
        self.retries = retries
        self.backoff = backoff
        self.timeout = timeout
        self._errors = ipfshttpclient.exceptions
        self._client_class = ipfshttpclient.Client
        self._multiaddr = to_multiaddr(api_url)
        self._per_thread = threading.local()
        self._clients: list = []
        self._clients_lock = threading.Lock()
        self._client  # noqa: B018 - fail on a malformed address now, not on the first call

    def __repr__(self) -> str:
        return f"IpfsBlobStore({self.api_url!r})"

    @property
    def _client(self):
        client = getattr(self._per_thread, "client", None)
        if client is None:
            # Client(addr), not connect(): connect() insists on a go-ipfs version and js-ipfs reports 0.18.
            client = self._client_class(self._multiaddr, timeout=self.timeout)
            self._per_thread.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _call(self, what: str, fn: Callable[[], T], *, retry_timeouts: bool = True) -> T:
        transient = (self._errors.ConnectionError, self._errors.TimeoutError, self._errors.ProtocolError)
        if not retry_timeouts:
            transient = (self._errors.ConnectionError, self._errors.ProtocolError)
        delay = self.backoff
        for attempt in range(self.retries + 1):
            try:
                return fn()
            except transient as exc:
                last = exc
            if attempt < self.retries:
                log.debug("IPFS %s at %s failed (%s); retry %d in %.2fs", what, self.api_url, last, attempt + 1, delay)
                time.sleep(delay)
                delay *= 2
        raise BlobStoreUnavailable(
            f"IPFS node at {self.api_url} unavailable for {what} after {self.retries + 1} attempts: "
            f"{type(last).__name__}: {last}"
        ) from last

    def add(self, data: bytes, *, expected_cid: str | None = None) -> str:
        data = bytes(data)
        try:
            cid = self._call("add", lambda: self._client.add_bytes(data, opts=_ADD_OPTS))
        except self._errors.ErrorResponse as exc:
            raise BlobStoreError(f"IPFS node at {self.api_url} rejected add: {exc}") from exc
        expected = unixfs_cid(data) if expected_cid is None else expected_cid
        if CID.decode(cid) != CID.decode(expected):
            raise BlobIntegrityError(f"IPFS node at {self.api_url} returned CID {cid} for a blob whose CID is "
                                     f"{expected}")
        return expected

    def cat(self, cid: str, expected_sha256: bytes | str | None = None, *, max_bytes: int | None = None) -> bytes:
        # A node that answers but stays silent on `cat` is searching for content nobody provides (a faulty
        # peer can commit such a CID): one timeout is the answer. Retrying would multiply the stall by
        # `retries` and could push every honest collector past the vote deadline.
        try:
            limit = self.max_blob_bytes if max_bytes is None else max_bytes
            data = self._call(f"cat {cid}", lambda: self._read_capped(cid, limit), retry_timeouts=False)
        except self._errors.TimeoutError as exc:
            raise BlobNotFound(
                f"IPFS node at {self.api_url} found no provider for {cid} within {self.timeout:g}s"
            ) from exc
        except self._errors.ErrorResponse as exc:
            raise BlobNotFound(f"IPFS node at {self.api_url} cannot serve {cid}: {exc}") from exc
        verify_blob(cid, data, expected_sha256)
        return data

    def _read_capped(self, cid: str, limit: int) -> bytes:
        """The blob's bytes, streamed; BlobTooLarge as soon as more than `limit` arrive (the rest is never read)."""
        stream = self._client.cat(cid, length=limit + 1, stream=True)  # `length`: a hint, not trusted
        data = bytearray()
        try:
            for piece in stream:
                data += piece
                _check_cap(cid, len(data), limit)
        except self._read_errors as exc:
            raise self._errors.ProtocolError(exc) from exc
        finally:
            stream.close()
        return bytes(data)

    def pin(self, cid: str) -> None:
        try:
            self._call(f"pin {cid}", lambda: self._client.pin.add(cid))
        except self._errors.ErrorResponse as exc:
            raise BlobNotFound(f"IPFS node at {self.api_url} cannot pin {cid}: {exc}") from exc

    def has(self, cid: str) -> bool:
        try:
            answer = self._call(f"pin ls {cid}", lambda: self._client.pin.ls(cid, type="recursive"))
        except self._errors.ErrorResponse:
            return False  # "not pinned" is an error answer in the Kubo RPC API
        return bool(_pinned_keys(answer))

    def node_id(self) -> str:
        """The node's peer id (also a cheap liveness probe)."""
        return str(self._call("id", lambda: self._client.id())["ID"])

    def close(self) -> None:
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()
        self._per_thread = threading.local()


def _pinned_keys(answer: object) -> Iterable[str]:
    keys = answer.get("Keys") if hasattr(answer, "get") else None  # type: ignore[union-attr]
    return list(keys or [])
