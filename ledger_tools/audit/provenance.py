"""Where an audit report's evidence came from: when it was made, from which chain, contract and block, by which
tool version, through which endpoints, and which genesis model and model spec the federation declared.

A reader of an archived report needs these to reproduce it (same contract, same block height, same tool).
"""
from __future__ import annotations

import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ledger_tools.audit.history import LedgerHistory
from ledger_tools.audit.timeline import now_utc

_SOURCE_ROOT = Path(__file__).resolve().parents[2]


def tool_version() -> str:
    """`fedledger 0.1.0 (git 1a2b3c4d5e6f)`; the commit only when running from a git checkout (`-dirty` when it
    has local changes)."""
    try:
        version = metadata.version("fedledger")
    except metadata.PackageNotFoundError:
        version = "unknown"
    try:
        out = subprocess.run(["git", "-C", str(_SOURCE_ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return f"fedledger {version}"
    commit = out.stdout.strip()
    return f"fedledger {version}" + (f" (git {commit})" if out.returncode == 0 and commit else "")


@dataclass(frozen=True)
class Provenance:
    generated_at: str  # UTC, human-readable
    chain_id: int
    contract: str
    block: int  # the history was read up to this block
    tool: str
    rpc_url: str
    ipfs_url: str | None  # None: chain only (--no-ipfs)
    genesis_model_hash: str
    genesis_model_cid: str
    model_spec_hash: str

    @classmethod
    def of(cls, history: LedgerHistory, *, rpc_url: str, ipfs_url: str | None) -> "Provenance":
        p = history.params
        return cls(now_utc(), history.chain_id, history.address, history.to_block, tool_version(), rpc_url,
                   ipfs_url, "0x" + p.genesis_model_hash.hex(), p.genesis_model_cid, "0x" + p.model_spec_hash.hex())

    def rows(self) -> list[tuple[str, str]]:
        """(label, value) pairs in the order the report shows them."""
        return [
            ("generated at", self.generated_at), ("chain id", str(self.chain_id)), ("contract", self.contract),
            ("block height", f"{self.block} (events read up to this block)"), ("tool version", self.tool),
            ("Ethereum RPC", self.rpc_url), ("IPFS API", self.ipfs_url or "not used (--no-ipfs)"),
            ("genesis model hash", self.genesis_model_hash), ("genesis model CID", self.genesis_model_cid),
            ("model spec hash", self.model_spec_hash),
        ]
