"""Transport probes of the overhead bench: IPFS add/cat throughput per option set, and the gossip exchange of
one sealed blob between real `peer.net.gossip.GossipNode` processes on loopback (the no-ledger baseline's transfer)."""
from __future__ import annotations

import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEALED_BLOB_BYTES = 4_001_000        # a ~1M-parameter canonical update (3,999,940 bytes) plus the seal header
SMALL_BLOB_BYTES = 20_000            # the 4,810-parameter update (19,240 bytes) plus the seal header


def ipfs_throughput(api_url: str, *, size: int = SEALED_BLOB_BYTES, reps: int = 6) -> dict:
    """MB/s of `add` per option set (interleaved, median of `reps`) and of `cat`, sequential and concurrent."""
    from concurrent.futures import ThreadPoolExecutor

    from ledger_tools.blobstore import _ADD_OPTS, IpfsBlobStore

    store = IpfsBlobStore(api_url)
    base = {k: v for k, v in _ADD_OPTS.items() if k != "pin"}
    variants = {
        "in use: CIDv1, raw leaves, 256 KiB chunks, pin": dict(_ADD_OPTS),
        "same, no pin": {**base, "pin": "false"},
        "1 MiB chunks, pin (CID not locally rebuildable)": {**base, "pin": "true", "chunker": "size-1048576"},
        "CIDv1, no raw leaves, pin": {"cid-version": "1", "cid-base": "base32", "pin": "true", "raw-leaves": "false"},
    }
    mb = size / 1e6
    for opts in variants.values():  # warm the node's code paths once per option set
        store._client.add_bytes(os.urandom(size), opts=opts)
    times: dict[str, list[float]] = {k: [] for k in variants}
    for _ in range(reps):
        for name, opts in variants.items():
            blob = os.urandom(size)
            t0 = time.perf_counter()
            store._client.add_bytes(blob, opts=opts)
            times[name].append(time.perf_counter() - t0)
    out = {"blob_bytes": size, "add_MBps": {k: round(mb / statistics.median(v), 1) for k, v in times.items()}}
    blobs = [os.urandom(size) for _ in range(9)]
    t0 = time.perf_counter()
    cids = [store.add(b) for b in blobs]
    out["store_add_MBps (add + local CID check)"] = round(9 * mb / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    for c in cids:
        store._client.cat(c)
    out["cat_MBps (raw)"] = round(9 * mb / (time.perf_counter() - t0), 1)
    t0 = time.perf_counter()
    for c in cids:
        store.cat(c)
    out["store_cat_MBps (cat + CID verification)"] = round(9 * mb / (time.perf_counter() - t0), 1)
    for threads in (1, 2, 4):
        with ThreadPoolExecutor(threads) as pool:
            t0 = time.perf_counter()
            list(pool.map(store.cat, cids))
            out[f"store_cat_9_blobs_{threads}_threads_s"] = round(time.perf_counter() - t0, 3)
    store.close()
    return out


class _GossipProcess:
    """One `tests/helpers/gossip_peer_main.py` process (a real GossipNode), JSON lines over stdin/stdout."""

    def __init__(self, index: int, members: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "tests" / "helpers" / "gossip_peer_main.py"), "--index", str(index),
             "--members", str(members), "--max-per-sender-round", "16"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, bufsize=1)
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout: float = 120) -> dict:
        line = self.lines.get(timeout=timeout)
        if line is None:
            raise RuntimeError("gossip process exited")
        reply = json.loads(line)
        if not reply["ok"]:
            raise RuntimeError(reply["error"])
        return reply

    def request(self, cmd: str, **kw) -> dict:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]
        return self.read()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def gossip_exchange(*, size: int = SEALED_BLOB_BYTES, reps: int = 5, all_to_all: int = 4) -> dict:
    """Seconds from the start of a publish (envelope + sealed blob) to the blob reassembled and verified at a
    receiver, over real libp2p GossipSub between two processes (shortest of `reps`); and one all-to-all exchange
    among `all_to_all` processes (every one publishes one blob; until every one holds all the others')."""
    out: dict = {"blob_bytes": size}
    procs = [_GossipProcess(i, max(2, all_to_all)) for i in range(max(2, all_to_all))]
    try:
        for p in procs:
            p.read()
        addrs = [p.request("start")["multiaddr"] for p in procs]
        for i, p in enumerate(procs):
            if addrs[i + 1:]:
                p.request("connect", addrs=addrs[i + 1:], timeout=15.0)
        for p in procs:
            p.request("wait_peers", n=len(procs) - 1, timeout=15.0)
        one_way = []
        for _ in range(reps):
            sender, receiver = procs[0], procs[1]
            h = os.urandom(32).hex()
            receiver.proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "items": [{"update_hash": h}],
                                                  "timeout": 60.0}) + "\n")
            receiver.proc.stdin.flush()
            item = sender.request("publish", round=1, blob_size=size, update_hash=h)
            one_way.append(receiver.read()["arrivals"][h]["blob"] - item["t_envelope"])
        # the shortest sample: the least disturbed by other work on the machine, and the shortest baseline
        out["one_blob_seconds"] = round(min(one_way), 3)
        out["one_blob_samples"] = [round(x, 3) for x in one_way]
        small = []
        for _ in range(reps):  # the scale curve's 4,810-parameter update (~19 KB sealed): one chunk
            h = os.urandom(32).hex()
            procs[1].proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "items": [{"update_hash": h}],
                                                  "timeout": 60.0}) + "\n")
            procs[1].proc.stdin.flush()
            item = procs[0].request("publish", round=1, blob_size=SMALL_BLOB_BYTES, update_hash=h)
            small.append(procs[1].read()["arrivals"][h]["blob"] - item["t_envelope"])
        out["small_blob_bytes"] = SMALL_BLOB_BYTES
        out["small_blob_seconds"] = round(min(small), 3)
        # all-to-all: every process publishes (blocking its command loop for the pacing), then collects.
        hashes = [os.urandom(32).hex() for _ in procs]
        for p, h in zip(procs, hashes):
            p.proc.stdin.write(json.dumps({"cmd": "publish", "round": 1, "blob_size": size, "update_hash": h}) + "\n")
            p.proc.stdin.write(json.dumps({"cmd": "expect", "round": 1, "timeout": 120.0,
                                           "items": [{"update_hash": x} for x in hashes if x != h]}) + "\n")
            p.proc.stdin.flush()
        starts, lasts = [], []
        for p in procs:
            starts.append(p.read()["t_envelope"])
            lasts.append(max(a["blob"] for a in p.read()["arrivals"].values()))
        out[f"all_to_all_{len(procs)}_processes_seconds"] = round(max(lasts) - min(starts), 3)
    finally:
        for p in procs:
            p.kill()
    return out
