"""`python -m fedledger` / `python -m fedledger.cli` put the current directory first on `sys.path`: run from a
folder that holds a `devnet/` (or `peer/`, `consensus/`, …) directory, Python would import that folder instead of
our package of the same name. The entry points drop that entry before any of our packages is imported, unless the
current directory is the project root (where those folders are ours)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _resolved(entry: str) -> Path | None:
    try:
        return Path(entry or os.curdir).resolve()
    except OSError:  # an entry naming a folder that vanished: not the cwd
        return None


def isolate_from_cwd() -> None:
    """Remove the current directory from `sys.path` when it is not the project root."""
    cwd = Path.cwd().resolve()
    if cwd == PROJECT_ROOT:
        return
    sys.path[:] = [entry for entry in sys.path if _resolved(entry) != cwd]
