"""A throw-away IPFS repo does not outlive a killed run (disk leak): `start_ipfs()` without `repo_dir` (simulate,
bench) puts the repo in /tmp/fedledger-ipfs-*, removed by `stop()`; a process killed with SIGKILL never stops it, and
each such repo (GBs after a bench) stayed. Now the dir carries its process's pid and the next `start_ipfs()` removes
the repos of dead processes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from devnet.ipfs import start_ipfs
from devnet.processes import pid_alive

ROOT = Path(__file__).resolve().parents[2]
KILLED_RUN = """
import json, os, signal
from devnet.ipfs import start_ipfs
node = start_ipfs(offline=True)
(node.repo_dir / "blob").write_bytes(b"x" * 4096)
print(json.dumps({"repo": str(node.repo_dir), "node_pid": node.pid}), flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_the_repo_of_a_killed_run_is_removed_by_the_next_start(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    out = subprocess.run([sys.executable, "-c", KILLED_RUN], capture_output=True, text=True, timeout=120, cwd=ROOT,
                         env={**os.environ, "TMPDIR": str(tmp_path)})
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    killed = json.loads(out.stdout.strip().splitlines()[-1])
    stale = Path(killed["repo"]).parent
    assert stale.parent == tmp_path and (stale / "repo" / "blob").is_file()  # the leak
    while pid_alive(killed["node_pid"]):  # the orphaned node stops itself once it sees its parent gone
        time.sleep(0.1)

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with start_ipfs(offline=True) as node:
        assert not stale.exists()
        assert node.repo_dir.parent.parent == tmp_path
    assert not node.repo_dir.exists()
