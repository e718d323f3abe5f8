"""Compile the Solidity sources with py-solc-x over npm solc-js, caching artifacts keyed by source hash.

No native solc is obtainable offline, so `solc-shim` (a tiny node program over `require('solc')`) stands in
for the solc binary: py-solc-x's `compile_standard(..., solc_binary=...)` only needs `--version` and
`--standard-json`. Compiling takes ~1-2 s; the cached artifact in `contracts/build/` makes it free afterwards.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet.toolchain import NODE_MODULES, REPO_ROOT, ToolMissing

CONTRACTS_DIR = REPO_ROOT / "contracts"
BUILD_DIR = CONTRACTS_DIR / "build"
SHIM = Path(__file__).resolve().parent / "solc-shim"
SOLC_VERSION = "0.8.37"
SETTINGS: dict[str, Any] = {
    "optimizer": {"enabled": True, "runs": 10_000},
    "evmVersion": "cancun",
    "viaIR": True,
    "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"]}},
}


class CompileError(RuntimeError):
    """The Solidity compiler rejected a source, or could not be run."""


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str
    source_hash: str


def source_hash(source: Path) -> str:
    """Cache key: the source text, the compiler version and the compiler settings."""
    digest = hashlib.sha256()
    digest.update(SOLC_VERSION.encode())
    digest.update(json.dumps(SETTINGS, sort_keys=True).encode())
    digest.update(source.name.encode() + b"\0" + source.read_bytes())
    return digest.hexdigest()


def _artifact_path(source: Path, build_dir: Path) -> Path:
    return build_dir / f"{source.stem}.json"


def _run_compiler(source: Path) -> dict[str, Any]:
    import solcx  # imported lazily: py-solc-x is only needed on a cache miss

    if not (NODE_MODULES / "solc").exists():
        raise ToolMissing(f"solc-js not found under {NODE_MODULES}; run `bash scripts/setup.sh` (or `make setup`)")
    standard_input = {
        "language": "Solidity",
        "sources": {source.name: {"content": source.read_text()}},
        "settings": SETTINGS,
    }
    try:
        output = solcx.compile_standard(standard_input, solc_binary=str(SHIM))
    except solcx.exceptions.SolcError as exc:
        raise CompileError(f"compiling {source.name} failed:\n{getattr(exc, 'message', exc)}") from exc
    return output["contracts"][source.name]


def compile_source(source: Path, *, build_dir: Path = BUILD_DIR, force: bool = False) -> dict[str, ContractArtifact]:
    """Compile one self-contained .sol file (or load its cached artifact); returns contracts by name."""
    source = Path(source).resolve()
    key = source_hash(source)
    path = _artifact_path(source, build_dir)
    if not force and path.exists():
        cached = json.loads(path.read_text())
        if cached.get("sourceHash") == key:
            return _artifacts(cached)
    contracts = _run_compiler(source)
    record = {
        "sourceHash": key,
        "source": source.name,
        "compiler": SOLC_VERSION,
        "settings": SETTINGS,
        "contracts": {
            name: {
                "abi": c["abi"],
                "bytecode": "0x" + c["evm"]["bytecode"]["object"],
                "deployedBytecode": "0x" + c["evm"]["deployedBytecode"]["object"],
            }
            for name, c in contracts.items()
        },
    }
    build_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
    tmp.replace(path)  # atomic: concurrent test processes never read half a file
    return _artifacts(record)


def _artifacts(record: dict[str, Any]) -> dict[str, ContractArtifact]:
    return {
        name: ContractArtifact(name, c["abi"], c["bytecode"], c["deployedBytecode"], record["sourceHash"])
        for name, c in record["contracts"].items()
    }


def load_contract(name: str = "FederationLedger", *, source: Path | None = None) -> ContractArtifact:
    """Artifact of contract `name` from `source` (default `contracts/<name>.sol`), compiling on a cache miss."""
    source = source or CONTRACTS_DIR / f"{name}.sol"
    artifacts = compile_source(source)
    if name not in artifacts:
        raise CompileError(f"{source.name} defines no contract {name} (found: {', '.join(artifacts)})")
    return artifacts[name]


def compile_all(*, force: bool = False) -> dict[str, ContractArtifact]:
    """Compile every `contracts/*.sol` (not the test contracts)."""
    result: dict[str, ContractArtifact] = {}
    for source in sorted(CONTRACTS_DIR.glob("*.sol")):
        result.update(compile_source(source, force=force))
    return result


if __name__ == "__main__":
    for artifact in compile_all(force=True).values():
        size = (len(artifact.deployed_bytecode) - 2) // 2
        print(f"{artifact.name}: {size} bytes runtime, source hash {artifact.source_hash[:16]}")
