"""The command's entry paths: `--help` works whatever the environment holds (a bad FEDLEDGER_RPC is for the
command, not for its help), and `python -m fedledger(.cli)` imports our packages even when run from a folder
holding same-named directories (python -m puts the cwd first on sys.path)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import click
import pytest
import typer
from typer.testing import CliRunner

from fedledger.cli import app
from fedledger.errors import UserError

BAD_ENV = {"FEDLEDGER_RPC": "notaurl", "FEDLEDGER_IPFS": "not-an-api", "FEDLEDGER_CONTRACT": "0xzz",
           "FEDLEDGER_GOVERNOR": "garbage", "FEDLEDGER_CACHE_DIR": "/etc/hostname", "FEDLEDGER_KEY": "nope",
           "FEDLEDGER_DEPLOYER_KEY": "nope", "FEDLEDGER_PASSWORD": None, "FEDLEDGER_DEBUG": None}


def _paths(cmd: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subs = cmd.commands.items() if isinstance(cmd, click.Group) else []
    return [path] + [p for name, sub in sorted(subs) for p in _paths(sub, (*path, name))]


def test_help_of_every_command_ignores_bad_environment() -> None:
    runner = CliRunner()
    paths = _paths(typer.main.get_command(app))
    assert len(paths) > 30
    for path in paths:
        res = runner.invoke(app, [*path, "--help"], env=BAD_ENV)
        assert res.exit_code == 0 and "Usage" in res.output, (path, res.output, res.exception)
    # the environment is still checked when the command runs
    res = runner.invoke(app, ["audit", "rounds"], env=BAD_ENV)
    assert isinstance(res.exception, UserError) and res.exception.exit_code == 2, (res.output, res.exception)
    assert "notaurl" in res.exception.message


@pytest.mark.parametrize("module", ["fedledger", "fedledger.cli"])
def test_python_m_ignores_same_named_folders_in_the_cwd(tmp_path: Path, module: str) -> None:
    for name in ("devnet", "peer", "ledger_tools"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(f"raise SystemExit('the cwd {name}/ folder was imported')\n")
    res = subprocess.run([sys.executable, "-m", module, "devnet", "--help"], cwd=tmp_path, capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0 and "Usage" in res.stdout, res.stdout + res.stderr
    res = subprocess.run([sys.executable, "-m", module, "audit", "--rpc", "notaurl", "rounds"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "notaurl" in res.stderr, res.stdout + res.stderr
