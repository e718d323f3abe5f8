"""The package map of docs/architecture.md, enforced: imports only point down the layers.

    fedledger (CLI) → simulation → devnet → peer → ledger_tools → consensus
    bench may use any package but the CLI; contracts holds no Python logic.

A new import against the arrows fails here, so the architecture stays what the document says.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["consensus", "ledger_tools", "peer", "devnet", "simulation", "fedledger"]
ALLOWED: dict[str, set[str]] = {pkg: set(LAYERS[: i + 1]) for i, pkg in enumerate(LAYERS)}
ALLOWED["bench"] = set(LAYERS) - {"fedledger"} | {"bench"}
ALLOWED["contracts"] = {"contracts"}
OURS = set(ALLOWED)
#: What the protocol core may import besides the standard library: maths (numpy; torch for tensors handed in) and
#: keccak only — no I/O stacks.
CONSENSUS_THIRD_PARTY = {"numpy", "torch", "Crypto", "threadpoolctl"}
MAX_LINES = 400


def _modules(pkg: str) -> list[Path]:
    return sorted((ROOT / pkg).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_imports_follow_the_layers(pkg):
    wrong = [f"{path.relative_to(ROOT)} imports {name}"
             for path in _modules(pkg) for name in sorted(_imports(path))
             if name.split(".")[0] in OURS and name.split(".")[0] not in ALLOWED[pkg]]
    assert not wrong, "imports against the package map (docs/architecture.md):\n" + "\n".join(wrong)


def test_consensus_imports_no_io_stack():
    stdlib = set(sys.stdlib_module_names)
    io_modules = {"socket", "subprocess", "http", "urllib", "sqlite3", "asyncio", "shutil", "tempfile"}
    wrong = [f"{path.relative_to(ROOT)} imports {name}" for path in _modules("consensus")
             for name in sorted(_imports(path))
             if (top := name.split(".")[0]) not in OURS | {"__future__"}
             and (top not in stdlib or top in io_modules) and top not in CONSENSUS_THIRD_PARTY]
    assert not wrong, "\n".join(wrong)


def test_chain_records_are_pure_data():
    """The ledger's records are shared by the auditor's cache and the tests: no web3 behind them."""
    assert not {name for name in _imports(ROOT / "ledger_tools/chain/records.py")
                if name.split(".")[0] in {"web3", "eth_abi", "eth_account", "requests"}}


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_no_module_is_too_long_to_read(pkg):
    long = [f"{path.relative_to(ROOT)}: {n} lines" for path in _modules(pkg)
            if (n := len(path.read_text().splitlines())) > MAX_LINES]
    assert not long, f"split modules over {MAX_LINES} lines by job:\n" + "\n".join(long)
