"""The gossip node's blob spool does not leak (disk leak): a peer killed with SIGKILL cannot remove its
`fedledger-blobs-*` dir (n members' sealed updates, GBs at d=1M), and every killed test, bench or peer run used to
leave one more in /tmp. Now a spool lives under the peer's state dir, and a new spool removes the spools in its
directory whose process is gone, never one of a live process.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from peer.net.bulk import BlobKey, BlobSpool

KEY = BlobKey(b"\x01" * 20, b"\x02" * 32, b"\x03" * 32)

# A process that spools a blob and dies by SIGKILL (no finalizer, no atexit): what a killed peer leaves behind.
KILLED_RUN = """
import os, signal, sys
from peer.net.bulk import BlobKey, BlobSpool
spool = BlobSpool(sys.argv[1])
spool.write(BlobKey(b"\\x01" * 20, b"\\x02" * 32, b"\\x03" * 32), b"x" * 4096)
print(spool.directory, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def _killed_run_spool(parent: Path) -> Path:
    out = subprocess.run([sys.executable, "-c", KILLED_RUN, str(parent)], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    stale = Path(out.stdout.strip())
    assert stale.parent == parent and any(stale.iterdir())  # the leak: the killed run's blob is still there
    return stale


def test_a_new_spool_removes_the_spool_of_a_killed_run(tmp_path: Path) -> None:
    stale = _killed_run_spool(tmp_path)
    spool = BlobSpool(tmp_path)
    try:
        assert not stale.exists()
        assert spool.directory.parent == tmp_path and spool.directory.name.startswith(f"fedledger-blobs-{os.getpid()}-")
    finally:
        spool.close()
    assert not spool.directory.exists()


def test_a_live_process_spool_is_kept(tmp_path: Path) -> None:
    first = BlobSpool(tmp_path)
    path = first.write(KEY, b"blob")
    second = BlobSpool(tmp_path)  # same process, still alive: its spool and blob stay
    try:
        assert first.read(path) == b"blob" and second.directory != first.directory
        unrelated = tmp_path / "fedledger-blobs-abc_def"  # no pid in the name (another program's, or older): kept
        unrelated.mkdir()
        BlobSpool(tmp_path).close()
        assert unrelated.is_dir()
    finally:
        first.close()
        second.close()


def test_the_peer_spools_under_its_state_dir(local_federation) -> None:
    """`build_node` gives the gossip node `<state_dir>/blobs`: the blobs go (and are cleaned) with the node."""
    from fedledger.peer_run import build_node
    from peer.config import PeerConfig

    fed = local_federation(2)
    peer = fed.peers[0]
    config = PeerConfig.from_toml(peer.config_path)
    node, gossip = build_node(config, fed.password_file.read_text().strip())
    try:
        assert gossip is not None
        assert gossip.store.spool.directory.parent == peer.state_dir / "blobs"
    finally:
        gossip.store.spool.close()
