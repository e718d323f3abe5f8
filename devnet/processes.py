"""Process supervision shared by every launcher (anvil, the IPFS node, peer processes): start with a log file,
liveness (a zombie counts as dead), graceful stop (SIGTERM, wait, SIGKILL)."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
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


def start_process(args: Sequence[str], *, log_path: Path, append: bool = False, stdout_pipe: bool = False,
                  env: Mapping[str, str] | None = None, cwd: Path | None = None,
                  new_session: bool = True) -> subprocess.Popen:
    """Start `args` with stderr (and stdout, unless `stdout_pipe`) appended to `log_path`.

    The log is opened in append mode (truncated first unless `append`), so a reader that copies piped stdout
    into the same file never overwrites the child's lines. `new_session` puts the child in its own session
    and process group: it survives the caller's Ctrl-C, and `terminate(..., group=True)` reaches its children.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    if not append:
        log_path.write_bytes(b"")
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout_pipe else log,
            stderr=log if stdout_pipe else subprocess.STDOUT,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=new_session,
        )


def process_alive(pid: int, popen: subprocess.Popen | None) -> bool:
    """Our own child through its Popen (which reaps it); a re-attached pid through /proc (zombie = dead)."""
    return popen.poll() is None if popen is not None else pid_alive(pid)


def _signal(pid: int, sig: int, group: bool) -> None:
    if group:
        os.killpg(pid, sig)
    else:
        os.kill(pid, sig)


def terminate(pid: int, popen: subprocess.Popen | None, timeout: float, *, group: bool = False) -> None:
    """SIGTERM and wait up to `timeout` s (services save their state on SIGTERM); SIGKILL if still running.

    `group=True` signals the child's whole process group (a child started with `new_session`), so whatever
    it started dies with it."""
    try:
        _signal(pid, signal.SIGTERM, group)
        if not wait_for_exit(pid, popen, timeout):
            _signal(pid, signal.SIGKILL, group)
            wait_for_exit(pid, popen, 5.0)
    except ProcessLookupError:
        pass


def kill(pid: int, popen: subprocess.Popen | None, *, group: bool = False) -> None:
    """SIGKILL at once (a crash, as tests simulate it) and reap."""
    try:
        _signal(pid, signal.SIGKILL, group)
        wait_for_exit(pid, popen, 10.0)
    except ProcessLookupError:
        pass
