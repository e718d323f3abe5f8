"""`fedledger audit` / `rewards` frictions: endpoint options before or after the subcommand (key options too),
one line + hint when IPFS is unreachable, and a repeated claim that succeeds saying there is nothing to claim."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fedledger.cli import app
from fedledger.errors import EXIT_UNREACHABLE, UserError
from fedledger.service_errors import IPFS_HINT
from helpers.ledger_history import make_history

runner = CliRunner()
DEAD_RPC = "http://127.0.0.1:9"
DEAD_IPFS = "http://127.0.0.1:9"
CONTRACT = "0x" + "12" * 20


@pytest.mark.parametrize("argv", [
    ["audit", "rounds", "--rpc", DEAD_RPC, "--contract", CONTRACT],
    ["audit", "--contract", CONTRACT, "rounds", "--json", f"--rpc={DEAD_RPC}"],
    ["audit", "verify", "--ipfs", DEAD_IPFS, "--rpc", DEAD_RPC, "--contract", CONTRACT, "--key-file", "k"],
    ["audit", "--ipfs", DEAD_IPFS, "verify", "--rpc-url", DEAD_RPC, "--contract", CONTRACT],
    ["rewards", "show", "--address", CONTRACT, "--rpc", DEAD_RPC, "--contract", CONTRACT, "--cache-dir", "c"],
    ["rewards", "--key", "0x" + "01" * 32, "--rpc", DEAD_RPC, "claim", "--contract", CONTRACT],
])
def test_endpoint_options_on_either_side_of_the_subcommand(argv):
    """Each line reaches the (dead) RPC named after or before the subcommand: the options were parsed."""
    res = runner.invoke(app, argv)
    assert isinstance(res.exception, UserError), res.output
    assert res.exception.message == f"cannot reach the Ethereum RPC at {DEAD_RPC} (ConnectionError)"


def test_subcommand_options_keep_their_meaning():
    """A subcommand's own option is never taken for the group's: `simulate --rpc` is unaffected, and
    `audit peer --no-ipfs` stays the subcommand's flag."""
    res = runner.invoke(app, ["audit", "peer", "0xabc", "--no-ipfs", "--rpc", DEAD_RPC, "--contract", CONTRACT])
    assert isinstance(res.exception, UserError) and DEAD_RPC in res.exception.message
    res = runner.invoke(app, ["audit", "rounds", "--bogus"])
    assert res.exit_code == 2 and "No such option" in res.output


@pytest.fixture
def small(anvil, ipfs_store, dev_keys, request):
    h = make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, n_members=3,
                     seed=abs(hash(request.node.name)) % 10_000, account_seed="cli-options")
    h.run_round()
    return h


def test_unreachable_ipfs_is_one_line_in_every_command(small, tmp_path):
    h = small
    key = tmp_path / "auditor.key"
    from cryptography.hazmat.primitives import serialization

    key.write_text(h.auditor.enc_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                    serialization.NoEncryption()).hex())
    member = h.members[0]
    commands = [["audit", "verify", "--key-file", str(key)], ["audit", "peer", member.address],
                ["audit", "report", "--out", str(tmp_path / "r.html")], ["audit", "export", "--format", "csv"],
                ["rewards", "show", "--address", member.address],
                ["rewards", "claim", "--key", member.account.private_key]]
    expected = f"cannot reach the IPFS API at {DEAD_IPFS} (ConnectionError)"
    for argv in commands:  # endpoint options after the subcommand, as an operator types them
        res = runner.invoke(app, [*argv, "--rpc", h.rpc_url, "--contract", h.address, "--ipfs", DEAD_IPFS,
                                  "--cache-dir", str(tmp_path / "cache")])
        assert isinstance(res.exception, UserError), (argv, res.output)
        assert res.exception.message == expected and "\n" not in res.exception.message
    out = subprocess.run([sys.executable, "-m", "fedledger.cli", "rewards", "show", "--address", member.address,
                          "--rpc", h.rpc_url, "--contract", h.address, "--ipfs", DEAD_IPFS,
                          "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, timeout=120)
    assert out.returncode == EXIT_UNREACHABLE
    assert out.stderr.splitlines() == [f"error: {expected}", f"hint: {IPFS_HINT}"], out.stderr


def test_repeated_claim_exits_0(small, tmp_path):
    h = small
    member = h.members[1]
    base = [sys.executable, "-m", "fedledger.cli", "rewards", "claim", "--rpc", h.rpc_url, "--contract", h.address,
            "--ipfs", h.store.api_url, "--cache-dir", str(tmp_path / "cache")]
    env_key = {"FEDLEDGER_KEY": member.account.private_key}
    first = subprocess.run(base, capture_output=True, text=True, timeout=120, env={**os.environ, **env_key})
    assert first.returncode == 0 and "claimed" in first.stdout, first.stderr
    again = subprocess.run(base, capture_output=True, text=True, timeout=120, env={**os.environ, **env_key})
    assert again.returncode == 0, again.stderr
    text = " ".join(again.stdout.split())
    assert f"nothing to claim for {member.address}: everything earned" in text and "already claimed" in text
