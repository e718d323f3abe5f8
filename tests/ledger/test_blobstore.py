"""Blob store against a real IPFS node: CIDs, integrity checks, retries, persistence across restarts."""
from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
import urllib.request
from collections.abc import Iterator

import pytest

from devnet.ipfs import start_ipfs
from devnet.ports import free_port
from ledger_tools.blobstore import (
    CHUNK_SIZE,
    MAX_LINKS_PER_NODE,
    BlobIntegrityError,
    BlobNotFound,
    BlobStore,
    BlobStoreUnavailable,
    InMemoryBlobStore,
    IpfsBlobStore,
    raw_cid,
    to_multiaddr,
    unixfs_cid,
    verify_blob,
)

# the last one needs two levels of DAG-PB nodes (one node holds at most MAX_LINKS_PER_NODE leaves)
SIZES = [0, 1, 1000, CHUNK_SIZE, CHUNK_SIZE + 1, 3 * CHUNK_SIZE + 17, MAX_LINKS_PER_NODE * CHUNK_SIZE + 1]


def test_both_stores_satisfy_the_interface(ipfs_store: IpfsBlobStore) -> None:
    assert isinstance(ipfs_store, BlobStore)
    assert isinstance(InMemoryBlobStore(), BlobStore)


def test_add_cat_pin_round_trip(ipfs_store: IpfsBlobStore) -> None:
    data = os.urandom(5000)
    cid = ipfs_store.add(data)
    assert cid.startswith("bafkrei")  # CIDv1, raw leaf, base32
    assert ipfs_store.cat(cid) == data
    assert ipfs_store.cat(cid, expected_sha256=hashlib.sha256(data).digest()) == data
    ipfs_store.pin(cid)
    assert ipfs_store.has(cid)
    assert not ipfs_store.has(raw_cid(b"never added " + os.urandom(8)))


@pytest.mark.parametrize("size", SIZES)
def test_node_cid_equals_local_computation(ipfs_store: IpfsBlobStore, size: int) -> None:
    data = os.urandom(size)
    cid = ipfs_store.add(data)  # add() itself rejects a node CID differing from the local one
    assert cid == unixfs_cid(data) == InMemoryBlobStore().add(data)
    if size <= CHUNK_SIZE:
        assert cid == raw_cid(data)


def test_one_mib_blob_integrity(ipfs_store: IpfsBlobStore) -> None:
    data = os.urandom(1 << 20)
    digest = hashlib.sha256(data).hexdigest()
    cid = ipfs_store.add(data)
    assert cid.startswith("bafybei")  # chunked: a DAG-PB root over raw leaves
    assert ipfs_store.cat(cid, expected_sha256=digest) == data
    assert ipfs_store.cat(cid, expected_sha256="0x" + digest) == data
    with pytest.raises(BlobIntegrityError, match="sha256"):
        ipfs_store.cat(cid, expected_sha256=hashlib.sha256(b"other").digest())


def test_mismatching_hash_detected(ipfs_store: IpfsBlobStore) -> None:
    cid = ipfs_store.add(b"model update A")
    with pytest.raises(BlobIntegrityError):
        ipfs_store.cat(cid, expected_sha256=hashlib.sha256(b"model update B").digest())


class _TamperingProxy(http.server.BaseHTTPRequestHandler):
    """A lying node: forwards RPC calls to the real node but flips one byte of every `cat` answer."""

    upstream = ""

    def do_POST(self) -> None:  # noqa: N802 (http.server naming)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        request = urllib.request.Request(self.upstream + self.path, data=body, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            payload = answer.read()
        if self.path.startswith("/api/v0/cat") and payload:
            payload = bytes([payload[0] ^ 1]) + payload[1:]
        self.send_response(200)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tampering_proxy(ipfs) -> Iterator[str]:
    handler = type("Proxy", (_TamperingProxy,), {"upstream": ipfs.http_url})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("size", [100, CHUNK_SIZE + 1])
def test_tampered_content_from_node_detected(ipfs_store: IpfsBlobStore, tampering_proxy: str, size: int) -> None:
    data = os.urandom(size)
    cid = ipfs_store.add(data)
    liar = IpfsBlobStore(tampering_proxy, retries=0)
    with pytest.raises(BlobIntegrityError):
        liar.cat(cid)  # no expected hash: the CID alone catches it, raw block or DAG-PB tree


def test_unreachable_node_raises_after_retries() -> None:
    url = f"/ip4/127.0.0.1/tcp/{free_port()}/http"
    store = IpfsBlobStore(url, timeout=2, retries=2, backoff=0.05)
    started = time.monotonic()
    with pytest.raises(BlobStoreUnavailable, match="after 3 attempts") as info:
        store.add(b"x")
    assert url in str(info.value)
    assert 0.15 <= time.monotonic() - started < 5  # 0.05 + 0.1 s of backoff, no long hang


def test_api_address_forms() -> None:
    assert to_multiaddr("http://127.0.0.1:5001") == "/ip4/127.0.0.1/tcp/5001/http"
    assert to_multiaddr("https://ipfs.example.org") == "/dns/ipfs.example.org/tcp/443/https"
    assert to_multiaddr("/dns/kubo/tcp/5001/http") == "/dns/kubo/tcp/5001/http"
    with pytest.raises(ValueError):
        to_multiaddr("ftp://x")


def test_http_url_works_like_multiaddr(ipfs) -> None:
    store = IpfsBlobStore(ipfs.http_url)
    assert store.cat(store.add(b"by url")) == b"by url"


def test_in_memory_store_verifies_and_reports_missing() -> None:
    store = InMemoryBlobStore()
    cid = store.add(b"abc")
    assert store.has(cid) and store.cat(cid) == b"abc"
    store._blobs[cid] = b"abd"  # simulate corruption behind the interface
    with pytest.raises(BlobIntegrityError):
        store.cat(cid)
    with pytest.raises(BlobNotFound):
        store.cat(raw_cid(b"missing"))


def test_unverifiable_cid_needs_expected_hash() -> None:
    cid_v0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
    with pytest.raises(BlobIntegrityError, match="expected_sha256"):
        verify_blob(cid_v0, b"whatever")
    verify_blob(cid_v0, b"whatever", expected_sha256=hashlib.sha256(b"whatever").digest())
    with pytest.raises(BlobIntegrityError, match="not a valid CID"):
        verify_blob("not-a-cid", b"")


def test_restart_keeps_pinned_blob(tmp_path) -> None:
    repo = tmp_path / "repo"
    data = os.urandom(CHUNK_SIZE * 2)
    with start_ipfs(repo_dir=repo, offline=True) as node:
        cid = IpfsBlobStore(node.api_url).add(data)
        port = node.api_port
    with start_ipfs(api_port=port, repo_dir=repo, offline=True) as node:
        store = IpfsBlobStore(node.api_url)
        assert store.has(cid)
        assert store.cat(cid) == data


def test_one_store_shared_by_threads(ipfs_store: IpfsBlobStore) -> None:
    """Collectors fetch a round's blobs concurrently through one store: each thread gets its own client."""
    from concurrent.futures import ThreadPoolExecutor

    blobs = [os.urandom(CHUNK_SIZE * 2 + i) for i in range(8)]
    with ThreadPoolExecutor(4) as pool:
        cids = list(pool.map(ipfs_store.add, blobs))
        assert list(pool.map(ipfs_store.cat, cids)) == blobs
    assert cids == [unixfs_cid(b) for b in blobs]
    assert len(ipfs_store._clients) >= 2
    ipfs_store.close()
    assert ipfs_store.cat(cids[0]) == blobs[0]  # a closed store opens a fresh client on the next call


def test_cat_of_content_nobody_provides_costs_one_timeout_not_retries() -> None:
    """A faulty member can commit a CID nobody holds; the node then stays silent on `cat`. The collector must
    learn that after one timeout (BlobNotFound → excluded), not after `retries` timeouts and backoffs, or a
    single such commitment pushes every honest peer past the vote deadline (was ~157 s per blob)."""
    import socket
    import threading
    import time

    from ledger_tools.blobstore import BlobNotFound, IpfsBlobStore

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept_and_stay_silent() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept_and_stay_silent, daemon=True)
    thread.start()
    try:
        store = IpfsBlobStore(f"/ip4/127.0.0.1/tcp/{port}/http", timeout=0.5, retries=4, backoff=0.5)
        started = time.monotonic()
        with pytest.raises(BlobNotFound):
            store.cat("bafkreiba45w4umje7hhduy5pnq5r5i4qs5ehdt3oa3tgbevt23ptsk2yhu")
        assert time.monotonic() - started < 2.0, "one timeout, no retries"
    finally:
        stop.set()
        thread.join(2)
        for conn in held:
            conn.close()
        listener.close()
