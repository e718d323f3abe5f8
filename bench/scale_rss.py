"""Peak RSS of one peer process through a round at a given model size: train, then collect + aggregate.

The other n−1 members' sealed updates are prepared by `prepare` (in the caller's process) and written as
files, exactly as the gossip node's spool holds them after the bulk fetch (`peer.net.bulk.BlobSpool`). The
probe then runs in a fresh process what a peer runs: train on its shard from M(r−1) (`train_local`, as
`commit_step.train_update`), then `collect_updates` (spool copies read inside the fetch workers, real
unseal, hash check) and `compute_round_outcome` (decode, Multi-Krum, apply, reward tree), as `vote_step`.
Peak RSS is the kernel's high-water mark (VmHWM), reset between the two phases through /proc/self/clear_refs,
so the collect+aggregate figure is that phase's own peak.

    python -m bench.scale_rss --task digits-11m --peers 10     (JSON on stdout)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

FEDERATION = "0x" + "fe" * 20
ROUND = 2


def _status(field: str) -> int:
    """A /proc/self/status memory field in bytes."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := current RSS
        return True
    except OSError:
        return False


def _task(name: str):
    from peer.learning.tasks import DigitsTask, get_task

    return DigitsTask(hidden=int(name[len("digits:h"):])) if name.startswith("digits:h") else get_task(name)


def prepare(task_name: str, peers: int, directory: Path, seed: int = 0) -> dict:
    """Genesis model, the probe's key, and n−1 members' sealed updates (small random steps) as files."""
    import numpy as np
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

    import consensus
    from peer.crypto.seal import seal

    task = _task(task_name)
    genesis = consensus.encode(task.genesis_state(seed))
    spec = consensus.decode_ints(genesis).spec
    me = X25519PrivateKey.generate()
    my_address = "0x" + "01" * 20
    (directory / "model.bin").write_bytes(genesis)
    (directory / "me.key").write_bytes(me.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption()))
    rng = np.random.default_rng(seed)
    others = []
    for i in range(1, peers):
        sender = f"0x{i + 1:040x}"
        update = consensus.encode_ints(spec, rng.integers(-2000, 2000, spec.num_params, dtype=np.int32))
        sealed = seal(update, {my_address: me.public_key()}, federation=FEDERATION, round=ROUND, sender=sender)
        path = directory / f"{sender}.sealed"
        path.write_bytes(sealed)
        others.append({"member": sender, "update_hash": hashlib.sha256(update).hexdigest(), "path": str(path),
                       "sealed_bytes": len(sealed)})
        del update, sealed
    meta = {"task": task_name, "peers": peers, "my_address": my_address, "others": others,
            "parameters": spec.num_params}
    (directory / "meta.json").write_text(json.dumps(meta))
    return meta


class _SpoolGossip:
    """What the collector asks of a gossip node whose bulk fetches completed: blobs by (sender, update hash),
    each read from its spool file at the call."""

    def __init__(self, files: dict[tuple[str, bytes], Path]) -> None:
        self.files = files

    def envelopes(self, round: int) -> list:
        return []

    def has_blob(self, update_hash: bytes, *, sender: str | None = None) -> bool:
        return (sender, update_hash) in self.files

    def blob(self, update_hash: bytes, blob_sha256: bytes | None = None, *, sender: str | None = None) -> bytes:
        return self.files[(sender, update_hash)].read_bytes()

    def wait_for(self, predicate, timeout: float) -> bool:
        return predicate()


def probe(directory: Path, epochs: int) -> dict:
    """Run in a fresh process: the peer's train, then collect + aggregate; peaks and what is held."""
    import torch
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    import consensus
    from consensus.commitment import Commitment
    from consensus.round_outcome import compute_round_outcome
    from peer.crypto.seal import unseal
    from peer.learning.partition import partition
    from peer.learning.training import train_local
    from peer.loop.collect import collect_updates

    meta = json.loads((directory / "meta.json").read_text())
    n = meta["peers"]
    task = _task(meta["task"])
    out: dict = {"task": meta["task"], "peers": n, "parameters": meta["parameters"], "torch_threads":
                 torch.get_num_threads(), "rss_after_imports": _status("VmRSS")}
    model = (directory / "model.bin").read_bytes()
    shard = partition(task.train_data.labels, n, alpha=1.0, seed=0)[0]
    t = time.perf_counter()
    global_state = consensus.decode(model)
    result = train_local(task, global_state, task.train_data.subset(shard), epochs=epochs, batch_size=16, lr=0.05,
                         momentum=0.9, seed=1)
    own = consensus.encode(result.update(global_state))
    del result, global_state
    out["train_seconds"] = round(time.perf_counter() - t, 3)
    out["peak_train"] = _status("VmHWM")
    out["peak_reset"] = _reset_peak()
    out["rss_before_collect"] = _status("VmRSS")

    key = X25519PrivateKey.from_private_bytes((directory / "me.key").read_bytes())
    me = meta["my_address"]
    commits = [Commitment(me, hashlib.sha256(own).digest(), "bafkreime", 100, round=ROUND)]
    files = {}
    for o in meta["others"]:
        h = bytes.fromhex(o["update_hash"])
        commits.append(Commitment(o["member"], h, "bafkreiother", 100, round=ROUND))
        files[(o["member"], h)] = Path(o["path"])

    def my_unseal(sealed: bytes, sender: str, round: int) -> bytes:
        return unseal(sealed, me, key, federation=FEDERATION, round=round, sender=sender)

    t = time.perf_counter()
    updates, report = collect_updates(ROUND, commits, unseal=my_unseal, gossip=_SpoolGossip(files),
                                      local={me: own}, gossip_wait=5.0)
    out["collect_seconds"] = round(time.perf_counter() - t, 3)
    out["rss_after_collect"] = _status("VmRSS")
    out["held_updates_bytes"] = sum(len(u.update or b"") for u in updates)
    out["rejected"] = len(report.rejected)
    t = time.perf_counter()
    outcome = compute_round_outcome(round=ROUND, previous_model=model, updates=updates, rule="multi_krum",
                                    rule_param=0, f=max(1, n // 5), reward_pool=10**18)
    out["aggregate_seconds"] = round(time.perf_counter() - t, 3)
    out["excluded"] = len(outcome.excluded)
    out["peak_collect_aggregate"] = _status("VmHWM")
    out["model_bytes"] = len(model)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="digits-11m")
    ap.add_argument("--peers", type=int, default=10)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--dir", help="(internal) run the probe on a prepared directory")
    args = ap.parse_args(argv)
    if args.dir:
        print(json.dumps(probe(Path(args.dir), args.epochs)))
        return 0
    print(json.dumps(measure(args.task, args.peers, args.epochs)))
    return 0


def measure(task: str, peers: int, epochs: int = 2) -> dict:
    """Prepare in a child, probe in another fresh child (so neither's memory counts in the other)."""
    import subprocess

    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    with tempfile.TemporaryDirectory(prefix="fedledger-rss-") as tmp:
        subprocess.run([sys.executable, "-c", f"from pathlib import Path; from bench.scale_rss import prepare; "
                        f"prepare({task!r}, {peers}, Path({tmp!r}))"], check=True, cwd=root, env=env)
        done = subprocess.run([sys.executable, "-m", "bench.scale_rss", "--dir", tmp, "--epochs", str(epochs)],
                              check=True, cwd=root, env=env, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
