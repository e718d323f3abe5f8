"""`fedledger devnet genesis`: the owner's way to pin a task's genesis model in the federation config."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from typer.testing import CliRunner

from fedledger.cli import app
from peer.learning.tasks import get_task

runner = CliRunner()


def test_genesis_prints_config_fields_that_match_the_blob_on_ipfs(ipfs, ipfs_store) -> None:
    result = runner.invoke(app, ["devnet", "genesis", "--task", "breast_cancer", "--ipfs", ipfs.api_url])
    assert result.exit_code == 0, result.output
    fields = json.loads(result.output)
    blob = ipfs_store.cat(fields["genesis_model_cid"])
    assert "0x" + hashlib.sha256(blob).hexdigest() == fields["genesis_model_hash"]
    assert fields["model_spec_hash"] == "0x" + get_task("breast_cancer").model_spec().spec_hash().hex()


def test_genesis_without_any_ipfs_is_one_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["devnet", "genesis", "--state-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "no IPFS API given" in str(result.exception) or "no IPFS API given" in result.output


def test_documented_example_config_is_valid() -> None:
    """The README points owners at this file: it must load as a FederationConfig."""
    from ledger_tools.config import FederationConfig

    config = FederationConfig.load(Path(__file__).resolve().parents[2] / "docs" / "federation.example.json")
    assert config.rule == "multi_krum" and config.f == 1 and len(config.members) == 5
