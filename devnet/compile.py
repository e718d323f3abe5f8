"""Compile the Solidity sources with py-solc-x over npm solc-js, caching artifacts keyed by source hash.

No native solc is obtainable offline, so `solc-shim` (a tiny node program over `require('solc')`) stands in
for the solc binary: py-solc-x's `compile_standard(..., solc_binary=...)` only needs `--version` and
`--standard-json`. Compiling takes ~1-2 s; the cached artifact in `contracts/build/` makes it free afterwards.

Imports are resolved here, not by the compiler: `collect_sources` follows every `import` from the entry file
(relative imports against the importing unit, `@openzeppelin/...` against the npm packages in `.tools/`, as a
solc remapping `@openzeppelin/=node_modules/@openzeppelin/` would) and hands solc-js all of them inline. solc-js
has no file system access, so an import missed here fails the compile instead of going unnoticed, and the
cache key covers exactly the sources compiled. Source unit names are the import paths, never absolute paths,
so the bytecode (its metadata hash names every unit) is the same on every machine.
"""
from __future__ import annotations

import hashlib
import json
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devnet.errors import DevnetError
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
#: Optimizer runs per entry file where they differ from SETTINGS'. The governor is called a few times per
#: membership or parameter change, not per round, and at 10,000 runs its runtime sat within bytes of the EIP-170
#: limit (24,576): 2,000 runs leaves ~2 kB for new rule names at a few hundred gas per governance call
#: (docs/gas.md, `python -m bench.gas_governance`).
OPTIMIZER_RUNS: dict[str, int] = {"FederationGovernor.sol": 2_000}
# Import prefixes served from the npm toolchain (pinned in devnet/toolchain/package.json), like solc remappings.
PACKAGE_ROOTS: dict[str, Path] = {"@openzeppelin/": NODE_MODULES}
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
_IMPORT = re.compile(r"^\s*import\s[^;]*?[\"']([^\"']+)[\"'][^;]*;", re.M)


class CompileError(DevnetError):
    """The Solidity compiler rejected a source, or could not be run."""


@dataclass(frozen=True)
class ContractArtifact:
    """ABI and bytecode of one compiled contract."""

    name: str
    abi: list[dict[str, Any]]
    bytecode: str  # 0x-prefixed creation code
    deployed_bytecode: str
    source_hash: str


def _unit_path(unit: str, base: Path) -> Path:
    for prefix, root in PACKAGE_ROOTS.items():
        if unit.startswith(prefix):
            return root / unit
    return base / unit


def _imports(unit: str, text: str) -> list[str]:
    """Source unit names `text` imports; relative paths resolve against `unit`'s directory, as solc does."""
    targets = _IMPORT.findall(_COMMENT.sub("", text))
    return [posixpath.normpath(posixpath.join(posixpath.dirname(unit), t)) if t.startswith(".") else t
            for t in targets]


def collect_sources(source: Path) -> dict[str, str]:
    """Text of `source` and of everything it imports, transitively, by source unit name (sorted)."""
    source = Path(source).resolve()
    found: dict[str, str] = {}
    pending = [source.name]
    while pending:
        unit = pending.pop()
        if unit in found:
            continue
        path = _unit_path(unit, source.parent)
        if not path.is_file():
            if any(unit.startswith(prefix) for prefix in PACKAGE_ROOTS):
                raise ToolMissing(f"{unit} not found under {NODE_MODULES}; run `bash scripts/setup.sh`")
            raise CompileError(f"{source.name}: imported source {unit} not found at {path}")
        found[unit] = path.read_text()
        pending.extend(_imports(unit, found[unit]))
    return dict(sorted(found.items()))


def settings_for(entry: str) -> dict[str, Any]:
    """The compiler settings of one entry file: SETTINGS with its optimizer runs (OPTIMIZER_RUNS)."""
    if entry not in OPTIMIZER_RUNS:
        return SETTINGS
    return {**SETTINGS, "optimizer": {**SETTINGS["optimizer"], "runs": OPTIMIZER_RUNS[entry]}}


def _sources_hash(entry: str, sources: dict[str, str]) -> str:
    digest = hashlib.sha256()
    digest.update(SOLC_VERSION.encode())
    digest.update(json.dumps(settings_for(entry), sort_keys=True).encode())
    for unit, text in sources.items():
        digest.update(unit.encode() + b"\0" + text.encode() + b"\0")
    return digest.hexdigest()


def source_hash(source: Path) -> str:
    """Cache key: every source compiled (the entry file and all it imports), the compiler version and settings."""
    return _sources_hash(Path(source).name, collect_sources(source))


def _artifact_path(source: Path, build_dir: Path) -> Path:
    return build_dir / f"{source.stem}.json"


def _run_compiler(entry: str, sources: dict[str, str]) -> dict[str, Any]:
    import solcx  # imported lazily: py-solc-x is only needed on a cache miss

    if not (NODE_MODULES / "solc").exists():
        raise ToolMissing(f"solc-js not found under {NODE_MODULES}; run `bash scripts/setup.sh` (or `make setup`)")
    standard_input = {
        "language": "Solidity",
        "sources": {unit: {"content": text} for unit, text in sources.items()},
        "settings": settings_for(entry),
    }
    try:
        output = solcx.compile_standard(standard_input, solc_binary=str(SHIM))
    except solcx.exceptions.SolcError as exc:
        raise CompileError(f"compiling {entry} failed:\n{getattr(exc, 'message', exc)}") from exc
    return output["contracts"][entry]


def compile_source(source: Path, *, build_dir: Path = BUILD_DIR, force: bool = False) -> dict[str, ContractArtifact]:
    """Compile one .sol file with its imports (or load its cached artifact); returns its contracts by name."""
    source = Path(source).resolve()
    sources = collect_sources(source)  # read once: the key and the compile see the same text
    key = _sources_hash(source.name, sources)
    path = _artifact_path(source, build_dir)
    if not force and path.exists():
        cached = json.loads(path.read_text())
        if cached.get("sourceHash") == key:
            return _artifacts(cached)
    contracts = _run_compiler(source.name, sources)
    record = {
        "sourceHash": key,
        "source": source.name,
        "imports": [unit for unit in sources if unit != source.name],
        "compiler": SOLC_VERSION,
        "settings": settings_for(source.name),
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
    """Compile every `contracts/*.sol` that no other one imports (not the test contracts): the interface and
    libraries are compiled into the contracts using them, with no artifact of their own."""
    sources = sorted(CONTRACTS_DIR.glob("*.sol"))
    imported = {unit for s in sources for unit in collect_sources(s) if unit != s.name}
    result: dict[str, ContractArtifact] = {}
    for source in sources:
        if source.name not in imported:
            result.update(compile_source(source, force=force))
    return result


if __name__ == "__main__":
    for artifact in compile_all(force=True).values():
        size = (len(artifact.deployed_bytecode) - 2) // 2
        print(f"{artifact.name}: {size} bytes runtime, source hash {artifact.source_hash[:16]}")
