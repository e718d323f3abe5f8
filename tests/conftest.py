"""Shared fixtures. Service fixtures live in fixtures_*.py modules (one per area) and are re-exported here."""
from __future__ import annotations

import importlib

for _name in ("fixtures_chain", "fixtures_ipfs", "fixtures_federation"):
    try:
        _module = importlib.import_module(_name)
    except ModuleNotFoundError as exc:  # area not built yet
        if exc.name != _name:
            raise
        continue
    globals().update({k: v for k, v in vars(_module).items() if not k.startswith("_")})
