"""`fedledger devnet up|status|down|deploy` as a user runs them: subprocesses, free loopback ports."""
from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.ports import free_port

# A contract whose runtime code returns 42: PUSH10 <runtime>; PUSH1 0; MSTORE; PUSH1 10; PUSH1 22; RETURN.
RUNTIME = "602a60005260206000f3"
INIT_CODE = "0x69" + RUNTIME + "600052600a6016f3"
DEV_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def fedledger(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # The console script, as a user runs it (`python -m` would put cwd first on sys.path, where a folder
    # named like one of our packages would shadow it).
    script = Path(sys.executable).with_name("fedledger")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "fedledger.cli"]
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*command, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["result"]


@pytest.fixture
def state_dir(tmp_path: Path) -> Iterator[Path]:
    """A devnet state dir that is always brought down after the test, whatever happened."""
    state = tmp_path / "state"
    yield state
    fedledger("devnet", "down", "--state-dir", str(state), cwd=tmp_path)


def _services(state: Path) -> dict:
    return json.loads((state / "services.json").read_text())


def _receipt(rpc_url: str, tx: str, timeout: float = 10.0) -> dict:
    """anvil mines asynchronously: the receipt may be null right after eth_sendTransaction returns."""
    deadline = time.monotonic() + timeout
    while True:
        receipt = rpc(rpc_url, "eth_getTransactionReceipt", tx)
        if receipt is not None:
            return receipt
        assert time.monotonic() < deadline, f"no receipt for {tx} after {timeout} s"
        time.sleep(0.05)


def test_up_status_deploy_down_up_keeps_chain_and_blobs(state_dir: Path, tmp_path: Path) -> None:
    chain_port, ipfs_port = free_port(), free_port()
    up = fedledger("devnet", "up", "--chain-port", str(chain_port), "--ipfs-port", str(ipfs_port),
                   "--state-dir", str(state_dir), "--detach", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    services = _services(state_dir)
    rpc_url = services["chain"]["url"]
    assert rpc_url == f"http://127.0.0.1:{chain_port}"
    assert services["ipfs"]["url"] == f"/ip4/127.0.0.1/tcp/{ipfs_port}/http"

    status = fedledger("devnet", "status", "--state-dir", str(state_dir), cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "block 0" in status.stdout and services["ipfs"]["extra"]["peer_id"] in status.stdout

    again = fedledger("devnet", "up", "--state-dir", str(state_dir), "--detach", cwd=tmp_path)
    assert again.returncode != 0 and "already running" in again.stderr

    # Put something on chain and in IPFS, then restart the devnet and find it again.
    tx = rpc(rpc_url, "eth_sendTransaction", {"from": DEV_ACCOUNT_0, "data": INIT_CODE, "gas": hex(100_000)})
    contract = _receipt(rpc_url, tx)["contractAddress"]
    from ledger_tools.blobstore import IpfsBlobStore

    blob = os.urandom(4096)
    cid = IpfsBlobStore(services["ipfs"]["url"]).add(blob)
    config = tmp_path / "federation.json"
    config.write_text(json.dumps(_minimal_config()))
    deployed = fedledger("devnet", "deploy", "--config", str(config), "--state-dir", str(state_dir), cwd=tmp_path,
                         timeout=120)
    assert deployed.returncode == 0, deployed.stderr
    assert "fedavg" in deployed.stdout
    federation = re.search(r"address\s*│\s*(0x[0-9a-fA-F]{40})", deployed.stdout).group(1)
    federation_code = rpc(rpc_url, "eth_getCode", federation, "latest")
    assert len(federation_code) > 1000

    down = fedledger("devnet", "down", "--state-dir", str(state_dir), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert not (state_dir / "services.json").exists()
    assert fedledger("devnet", "status", "--state-dir", str(state_dir), cwd=tmp_path).returncode == 1

    up = fedledger("devnet", "up", "--chain-port", str(chain_port), "--ipfs-port", str(ipfs_port),
                   "--state-dir", str(state_dir), "--detach", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    assert int(rpc(rpc_url, "eth_blockNumber"), 16) >= 1
    assert rpc(rpc_url, "eth_getCode", contract, "latest") == "0x" + RUNTIME
    assert rpc(rpc_url, "eth_getCode", federation, "latest") == federation_code
    store = IpfsBlobStore(_services(state_dir)["ipfs"]["url"])
    assert store.has(cid) and store.cat(cid) == blob


@pytest.mark.parametrize("flag", ["--chain-port", "--ipfs-port"])
def test_port_taken_is_refused(state_dir: Path, tmp_path: Path, flag: str) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        other = "--ipfs-port" if flag == "--chain-port" else "--chain-port"
        result = fedledger("devnet", "up", flag, str(taken), other, "0", "--state-dir", str(state_dir),
                           "--detach", cwd=tmp_path)
    assert result.returncode == 1
    assert f"{taken} is already in use" in result.stderr and "hint:" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (state_dir / "services.json").exists()


def test_deploy_reports_bad_input_in_one_line(tmp_path: Path) -> None:
    missing = fedledger("devnet", "deploy", "--config", str(tmp_path / "nope.json"), cwd=tmp_path)
    assert missing.returncode != 0 and "error:" in missing.stderr and "Traceback" not in missing.stderr

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rule": "krum"}))
    result = fedledger("devnet", "deploy", "--config", str(bad), cwd=tmp_path)
    assert result.returncode != 0 and "bad federation config" in result.stderr
    assert "Traceback" not in result.stderr


def test_deploy_to_unreachable_rpc(tmp_path: Path) -> None:
    config = tmp_path / "federation.json"
    config.write_text(json.dumps(_minimal_config()))
    url = f"http://127.0.0.1:{free_port()}"
    result = fedledger("devnet", "deploy", "--config", str(config), "--rpc", url, cwd=tmp_path)
    assert result.returncode != 0
    assert f"cannot reach a JSON-RPC node at {url}" in result.stderr and "Traceback" not in result.stderr


def _minimal_config() -> dict:
    return {
        "members": [
            {"address": "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", "enc_key": "0x" + "11" * 32},
            {"address": "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC", "enc_key": "0x" + "22" * 32},
            {"address": "0x90F79bf6EB2c4f870365E785982E1f101E93b906", "enc_key": "0x" + "33" * 32},
        ],
        "rule": "fedavg", "f": 0, "quorum_bps": 5000, "commit_period": 60, "vote_period": 60,
        "reward_per_round_wei": 10**15, "funding_wei": 10**16,
        "model_spec_hash": "0x" + "aa" * 32, "genesis_model_hash": "0x" + "bb" * 32,
        "genesis_model_cid": "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
    }


@pytest.mark.parametrize("option", ["--host", "--ipfs-api-host"])
def test_up_refuses_a_host_that_is_not_an_ip_address(tmp_path, option):
    """Found trying the README as a new user: `--host notanip` printed a raw '[Errno -2] Name or service not known'."""
    res = fedledger("devnet", "up", "--state-dir", str(tmp_path / "dev"), option, "notanip", cwd=tmp_path)
    assert res.returncode == 2 and "is not an IP address" in res.stderr and "hint:" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr and not (tmp_path / "dev" / "services.json").exists()
