"""Where the npm-installed tools live (.tools/ in the repository root, filled by scripts/setup.sh)."""
from __future__ import annotations

import os
from pathlib import Path

from devnet.errors import DevnetError

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_DIR = Path(os.environ.get("FEDLEDGER_TOOLS_DIR", REPO_ROOT / ".tools"))
NODE_MODULES = TOOLS_DIR / "node_modules"


class ToolMissing(DevnetError):
    """A required npm tool is not installed; the fix is always the same: run setup."""


def tool_path(name: str) -> Path:
    """Path of an npm-installed executable (anvil, cast, solcjs, ...); raise ToolMissing if absent."""
    path = NODE_MODULES / ".bin" / name
    if not path.exists():
        raise ToolMissing(f"{name} not found at {path}; run `bash scripts/setup.sh` (or `make setup`)")
    return path
