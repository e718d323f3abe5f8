"""Scratch dirs that a killed process does not leave piling up.

A process removes its scratch dir when it stops, but SIGKILL gives it no chance: every killed test, bench or peer
run used to leave one more `fedledger-*` dir in /tmp (a blob spool or an IPFS repo can hold GBs). `owned_tempdir`
names the dir after its process (`<prefix><pid>-<random>`) and first removes the dirs of the same prefix in the same
parent whose process is gone, so at most the dirs of live processes (plus one per pid recycled by a live process)
remain.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path


def owned_tempdir(prefix: str, parent: str | Path | None = None) -> Path:
    """A new dir `<parent>/<prefix><pid>-<random>` (parent: the system temp dir, created if missing), after
    removing that parent's `<prefix><pid>-*` dirs of dead processes. The caller still removes its own dir."""
    base = Path(parent if parent is not None else tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    remove_dead_owners(prefix, base)
    return Path(tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=base))


def remove_dead_owners(prefix: str, parent: Path) -> list[Path]:
    """Remove the `<prefix><pid>-*` dirs in `parent` whose process is gone; the removed paths.

    Dirs without a pid in the name (another program's, or made before this naming) are left alone."""
    removed = []
    for entry in parent.glob(f"{prefix}*-*"):
        pid = entry.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and entry.is_dir() and not entry.is_symlink() and not pid_alive(int(pid)):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed


def pid_alive(pid: int) -> bool:
    """True while a process `pid` exists (a zombie counts: its parent may still clean up after it)."""
    if pid <= 0:
        return True  # not a process id we name dirs after: never treat as dead
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True
