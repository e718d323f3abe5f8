"""Every CLI input either works or prints one line and a hint (issue 12, deliverable 4).

A table of bad inputs (`helpers.bad_inputs.ROWS`) runs against EVERY command of the `fedledger` app (a
command without a row fails `test_every_command_has_rows`): bad URLs, a live HTTP server that is not an Ethereum
node, a real anvil with a contract that is not a FederationLedger, files where folders are expected and the
reverse, non-TOML/non-JSON/binary files, out-of-range numbers, unknown names. Each row names the exit code
(README, "CLI errors and exit codes": 2 bad input, 3 unreachable or wrong service, 1 check failed / refused) and
a fragment of the hint it expects, so the root's "internal error" fallback (exit 70) can never stand in for a
real fix. Rows run in-process (typer's CliRunner; an escaping error goes through `fedledger.cli.report_error`,
exactly as `main()` does); a few run as real processes to check the real exit path.
"""
from __future__ import annotations

import http.server
import io
import json
import os
import subprocess
import sys
import threading
import time
import traceback
import urllib.request
from pathlib import Path

import click
import pytest
import typer
from rich.console import Console
from typer.testing import CliRunner

from devnet.ports import free_port
from fedledger.cli import app, report_error
from helpers.bad_inputs import (
    ADDR,
    EMPTY,
    ENV,
    REVERTS,
    ROWS,
    RPC,
    URL,
    USAGE,
    HtmlPage,
)

runner = CliRunner()


def _row_id(row: tuple[list[str], int, str]) -> str:
    return " ".join(row[0])[:90]


# ------------------------------------------------------------------------------------------ services and files


def _rpc(url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read()).get("result")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("bad-inputs")
    (root / "a-file.txt").write_text("just text\n")
    (root / "junk.bin").write_bytes(b"\x00\xff\xfe\x80junk\x00" * 8)
    (root / "bad.toml").write_text("this is = not [toml\n")
    (root / "bad.json").write_text("{not json\n")
    (root / "pw").write_text("password\n")
    bad_state = root / "bad-state"
    bad_state.mkdir()
    (bad_state / "services.json").write_bytes(b"\x00\xff junk")
    (root / "badtx.json").write_text(json.dumps(_mismatch_with_bad_commit_tx()))
    return {"file": str(root / "a-file.txt"), "junk": str(root / "junk.bin"), "badtoml": str(root / "bad.toml"),
            "badjson": str(root / "bad.json"), "pw": str(root / "pw"), "badstate": str(bad_state),
            "badtx": str(root / "badtx.json")}


def _mismatch_with_bad_commit_tx() -> dict:
    """A well-formed commitment-mismatch file whose commit transaction is not one (payload of junk bytes)."""
    from eth_account import Account

    from peer.net.envelope import Envelope
    from peer.net.slash_evidence import mismatch_json

    env = Envelope.create(Account.create(), federation=ADDR, chain_id=31337, round=2, update_hash=b"\x0a" * 32,
                          cid="bafkreix", wrapped_keys=b"\x07" * 10, blob_sha256=b"\x33" * 32, blob_size=10)
    doc = mismatch_json(env)
    doc["commit_tx"] = {"payload": "0x02c3010203", "y_parity": 0, "r": "0x" + "11" * 32, "s": "0x" + "22" * 32}
    return doc


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory):
    """`python -m http.server` on a free loopback port: answers HTTP, but is no Ethereum node and no IPFS API."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory",
                             str(tmp_path_factory.mktemp("www"))], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                urllib.request.urlopen(url, timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def html_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HtmlPage)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def chain(anvil) -> str:
    """The session anvil, with two contracts that are not FederationLedgers planted at fixed addresses."""
    _rpc(anvil.rpc_url, "anvil_setCode", [REVERTS, "0x60006000fd"])  # PUSH1 0 PUSH1 0 REVERT
    _rpc(anvil.rpc_url, "anvil_setCode", [EMPTY, "0x00"])  # STOP: every call returns no data
    return anvil.rpc_url


@pytest.fixture(scope="module")
def peer_state(tmp_path_factory: pytest.TempPathFactory, files: dict[str, str]) -> str:
    from peer.crypto.identity import PeerIdentity

    state = tmp_path_factory.mktemp("peer-state")  # a light KDF: each `peer run` row unlocks it (the rows check hints)
    PeerIdentity.create(state, Path(files["pw"]).read_text().strip(), scrypt_n=2**12)
    return str(state)


def _values(argv: list[str], request: pytest.FixtureRequest, tmp_path: Path, files: dict[str, str]) -> dict:
    """Only the fixtures this row uses are started (a row with no service placeholder starts nothing)."""
    text = " ".join(argv)
    values: dict[str, str] = {"dir": str(tmp_path), **files}
    if "{http}" in text:
        values["http"] = request.getfixturevalue("http_server")
    if "{html}" in text:
        values["html"] = request.getfixturevalue("html_server")
    if "{rpc}" in text or "{fed}" in text:
        values["rpc"] = request.getfixturevalue("chain")
    if "{fed}" in text:
        values["fed"] = request.getfixturevalue("federation").ledger.address
    if "{ipfs}" in text:
        values["ipfs"] = request.getfixturevalue("ipfs").api_url
    if "{state}" in text:
        values["state"] = request.getfixturevalue("peer_state")
    return values


def run_in_process(argv: list[str]) -> tuple[int, str]:
    """(exit code, output) of `fedledger argv`, an escaping error printed by the root's own `report_error`."""
    res = runner.invoke(app, argv, env=ENV)
    out = res.output
    code = res.exit_code
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        if os.environ.get("FEDLEDGER_DEBUG"):  # where an unexpected error came from
            traceback.print_exception(res.exception)
        buf = io.StringIO()
        code = report_error(res.exception, Console(file=buf, width=80, color_system=None))
        out += buf.getvalue()
    return code, out


def assert_one_line_and_hint(code: int, out: str, expected_code: int, hint: str) -> None:
    assert "Traceback" not in out, out
    assert code == expected_code, f"exit {code}, expected {expected_code}:\n{out}"
    if hint == USAGE:  # click's own usage error: its "Try '… --help'" line is the hint
        assert "Try '" in out and "--help" in out, out
        return
    lines = out.splitlines()
    first = next((i for i, line in enumerate(lines) if line.startswith("error: ")), None)
    assert first is not None, f"no 'error:' line:\n{out}"
    assert first + 1 < len(lines) and lines[first + 1].startswith("hint: "), f"the error is not one line + hint:\n{out}"
    assert hint in lines[first + 1], f"hint {lines[first + 1]!r} lacks {hint!r}:\n{out}"
    assert "internal error" not in lines[first], out


@pytest.mark.parametrize("row", ROWS, ids=[_row_id(r) for r in ROWS])
def test_bad_input_is_one_line_and_a_hint(row, request, tmp_path, files) -> None:
    template, expected_code, hint = row
    values = _values(template, request, tmp_path, files)
    argv = [arg.format(**values) for arg in template]
    code, out = run_in_process(argv)
    assert_one_line_and_hint(code, out, expected_code, hint)


def _commands(cmd: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(cmd, click.Group):
        return [p for name, sub in sorted(cmd.commands.items()) for p in _commands(sub, (*path, name))]
    return [path]


def test_every_command_has_rows() -> None:
    """A new command (or one renamed) without bad-input rows fails here: add its rows to ROWS."""
    commands = _commands(typer.main.get_command(app))
    assert len(commands) > 30
    covered = {tuple(a for a in argv[:3] if not a.startswith("-")) for argv, _, _ in ROWS}
    missing = [" ".join(c) for c in commands if not any(cov[:len(c)] == c for cov in covered)]
    assert not missing, f"commands without bad-input rows: {missing}"


# ------------------------------------------------------------------------------------------ the real exit path

SUBPROCESS_ROWS = [  # commands that do not import torch: a real process costs its imports
    (["audit", "--rpc", "notaurl", "--contract", ADDR, "rounds"], 2, URL),
    (["audit", "rounds", "--rpc", "{http}", "--contract", ADDR], 3, RPC),
    (["rewards", "claim", "--key", "garbage", "--contract", ADDR], 2, "64 hex digits"),
    (["gov", "list", "--rpc", "notaurl", "--governor", ADDR], 2, URL),
]


def test_real_process_exit_path(request, tmp_path, files) -> None:
    """`python -m fedledger.cli`: the exit code and stderr a shell sees (rich must not wrap the line at COLUMNS).
    The processes run side by side: each mostly waits for its imports."""
    env = {**{k: v for k, v in os.environ.items() if k not in ENV}, "COLUMNS": "60"}
    procs = []
    for template, expected_code, hint in SUBPROCESS_ROWS:
        values = _values(template, request, tmp_path, files)
        argv = [arg.format(**values) for arg in template]
        procs.append((subprocess.Popen([sys.executable, "-m", "fedledger.cli", *argv], stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True, env=env), expected_code, hint))
    for proc, expected_code, hint in procs:
        stdout, stderr = proc.communicate(timeout=120)
        assert_one_line_and_hint(proc.returncode, stdout + stderr, expected_code, hint)
        assert stderr.startswith("error: "), stderr


def test_unexpected_exception_is_one_line_exit_70(monkeypatch, capsys) -> None:
    """The last resort: a bug prints 'internal error: <type>: <msg>' and how to get the traceback, exit 70."""
    import fedledger.cli as cli

    def boom() -> None:
        raise RuntimeError("boom\nsecond line")

    def build(selected=None):
        root = typer.Typer()
        root.command(name="x")(boom)
        root.command(name="y")(lambda: None)
        return root

    monkeypatch.setattr(cli, "build_app", build)
    monkeypatch.setattr(sys, "argv", ["fedledger", "x"])
    monkeypatch.delenv("FEDLEDGER_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 70
    assert capsys.readouterr().err.splitlines() == ["error: internal error: RuntimeError: boom second line",
                                                    "hint: rerun with FEDLEDGER_DEBUG=1 for the traceback"]
    monkeypatch.setenv("FEDLEDGER_DEBUG", "1")
    with pytest.raises(RuntimeError):
        cli.main()


def test_simulate_rule_auto_runs(tmp_path) -> None:
    """`--rule auto` (what the config supports) is accepted and resolved to a concrete rule."""
    code, out = run_in_process(["simulate", "--rule", "auto", "--no-ledger", "-n", "4", "-r", "1", "--json",
                                "--local-epochs", "1", "--batch-size", "64", "-o", str(tmp_path)])
    assert code == 0, out
    doc = json.loads((tmp_path / "simulation.json").read_text())
    assert doc["config"]["rule"] != "auto"


def test_rewards_show_names_the_round_once(monkeypatch) -> None:
    """A problem line reads "round 3: …", not "round 3: round 3: …" (the reason already names its round)."""
    import fedledger.rewards_cmd as rewards_cmd
    from ledger_tools.audit.rewards import RewardProblem, RewardsView

    reason = "round 3: no reward tree CID was published for root 0x" + "00" * 32
    view = RewardsView(ADDR, (), (RewardProblem(3, reason),))
    monkeypatch.setattr(rewards_cmd, "_view", lambda ctx, address, rounds: (None, None, view))
    code, out = run_in_process(["rewards", "show", "--address", ADDR, "--contract", ADDR])
    assert code == 0, out
    assert " ".join(out.split()).count("round 3:") == 1, out
