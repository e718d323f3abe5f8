"""Process checks shared by the service launchers (anvil, the IPFS node)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
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


def wait_for_exit(pid: int, popen: subprocess.Popen | None, timeout: float) -> bool:
    """Wait up to `timeout` s for a service process to exit; True if it did.

    Our own child is reaped through its Popen; a re-attached process (started by an earlier command) is polled.
    """
    if popen is not None:
        try:
            popen.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    return False


def terminate(pid: int, popen: subprocess.Popen | None, timeout: float) -> None:
    """SIGTERM and wait up to `timeout` s (services save their state on SIGTERM); SIGKILL if still running."""
    try:
        os.kill(pid, signal.SIGTERM)
        if not wait_for_exit(pid, popen, timeout):
            os.kill(pid, signal.SIGKILL)
            wait_for_exit(pid, popen, 5.0)
    except ProcessLookupError:
        pass
