"""A disk that cannot take the peer's writes (issue 12, finding 8 / deliverable 5): full (ENOSPC) or read-only
(EROFS) under the state directory is ONE line naming the path and a clean stop with exit code 74 (EX_IOERR),
never a loop through rounds the peer cannot record. Real tmpfs mounts (the tests run as root; skipped otherwise)."""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from peer.loop.state import DiskError, PeerState

FED = "0x" + "ab" * 20
ME = "0x" + "cd" * 20


@contextlib.contextmanager
def tmpfs(path: Path, *, size: str = "64k", full: bool = False, read_only: bool = False) -> Iterator[Path]:
    """A tiny tmpfs at `path` (filled up with `full`, remounted read-only with `read_only`); unmounted after."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        if full:
            with contextlib.suppress(OSError), open(path / ".filler", "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        if read_only:
            subprocess.run(["mount", "-o", "remount,ro", str(path)], check=True)
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.mark.parametrize("case,code", [("full", errno.ENOSPC), ("read-only", errno.EROFS)])
def test_state_write_on_a_bad_disk_is_one_disk_error_naming_the_file(tmp_path, case, code):
    state = PeerState(tmp_path / "peer", federation=FED, address=ME)
    with tmpfs(state.dir, full=case == "full", read_only=case == "read-only"):
        state.record(1)
        with pytest.raises(DiskError) as caught:
            state.save()
        with pytest.raises(DiskError):
            state.write_artefact(1, "sealed.bin", b"x" * 100_000)
    assert caught.value.errno == code and caught.value.path == state.path
    assert str(state.path) in str(caught.value) and errno.errorcode[code] in str(caught.value)


def test_peer_run_on_a_full_disk_stops_with_one_line_and_exit_74(local_federation):
    """`fedledger peer run` whose node/ folder is a full tmpfs: exit 74 within seconds, one line naming the path
    (plus the hint), no traceback, no retry loop."""
    fed = local_federation(2)
    peer = fed.peers[0]
    with tmpfs(peer.state_dir / "node", full=True):
        out = subprocess.run([sys.executable, "-m", "fedledger.cli", "peer", "run", "--config", str(peer.config_path),
                              "--max-rounds", "1", "--no-gossip"], capture_output=True, text=True, timeout=180,
                             env={**os.environ, "COLUMNS": "1000"})
    assert out.returncode == 74, (out.returncode, out.stdout[-2000:], out.stderr)
    assert "Traceback" not in out.stderr
    named = [ln for ln in (out.stdout + out.stderr).splitlines() if str(peer.state_dir / "node") in ln]
    assert len(named) == 1 and named[0].startswith("error: cannot write "), named
    assert "No space left on device (ENOSPC)" in named[0]
    assert "retry" not in out.stdout, out.stdout[-2000:]
    assert "hint: free space" in out.stderr
