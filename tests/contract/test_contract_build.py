"""The contract build: imports resolved from the repository and the pinned npm packages, and a cache key that
changes when any compiled source does (an edit of an imported file must rebuild the artifact)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from devnet import compile as build
from devnet.compile import BUILD_DIR, CONTRACTS_DIR, collect_sources, source_hash


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """A contract importing a local interface and a package library that itself imports a sibling file."""
    pkg = tmp_path / "node_modules"
    (pkg / "@openzeppelin" / "x").mkdir(parents=True)
    (pkg / "@openzeppelin" / "x" / "Lib.sol").write_text('import {Dep} from "./Dep.sol";\nlibrary Lib {}\n')
    (pkg / "@openzeppelin" / "x" / "Dep.sol").write_text("library Dep {}\n")
    src = tmp_path / "src"
    src.mkdir()
    (src / "I.sol").write_text("interface I {}\n")
    (src / "Main.sol").write_text(
        '// import "Commented.sol";\n/* import "Blocked.sol"; */\n'
        'import {Lib} from "@openzeppelin/x/Lib.sol";\nimport "./I.sol";\ncontract Main {}\n'
    )
    monkeypatch.setitem(build.PACKAGE_ROOTS, "@openzeppelin/", pkg)
    return {"main": src / "Main.sol", "dep": pkg / "@openzeppelin" / "x" / "Dep.sol", "iface": src / "I.sol"}


def test_sources_follow_every_import_but_not_comments(tree):
    assert list(collect_sources(tree["main"])) == [
        "@openzeppelin/x/Dep.sol", "@openzeppelin/x/Lib.sol", "I.sol", "Main.sol"
    ]


@pytest.mark.parametrize("edited", ["dep", "iface", "main"])
def test_cache_key_covers_imported_sources(tree, edited):
    key = source_hash(tree["main"])
    tree[edited].write_text(tree[edited].read_text() + "// edited\n")
    assert source_hash(tree["main"]) != key


def test_missing_package_source_says_run_setup(tree):
    tree["dep"].unlink()
    with pytest.raises(build.ToolMissing, match="setup"):
        collect_sources(tree["main"])


def test_ledger_imports_openzeppelin_merkle_proof_and_records_its_imports():
    source = CONTRACTS_DIR / "FederationLedger.sol"
    units = collect_sources(source)
    assert "@openzeppelin/contracts/utils/cryptography/MerkleProof.sol" in units
    assert {"IFederationLedger.sol", "ReputationMath.sol"} <= set(units)
    assert "_hashPair" not in units["FederationLedger.sol"]  # no inline copy of the proof code
    artifact = json.loads((BUILD_DIR / "FederationLedger.json").read_text())
    assert artifact["imports"] == [unit for unit in units if unit != "FederationLedger.sol"]
