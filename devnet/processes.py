"""Process checks shared by the service launchers (anvil, the IPFS node)."""
from __future__ import annotations

import os
from pathlib import Path


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and has not exited (a zombie, exited but not yet reaped, is not alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return True


def pid_runs(pid: int, marker: bytes) -> bool:
    """True when `pid` is alive and its command line contains `marker`.

    Guards every signal we send: a pid recorded in a state file may have been recycled by another program.
    """
    if not pid_alive(pid):
        return False
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
