"""Operations after faults (issue 12, finding 7): one devnet service dies with kill -9, `devnet up` brings back
exactly that one, where it was; liveness checks count a zombie as dead; a killed IPFS node's stale repo lock is
cleared only once its owner is dead.

Before: `status` said "not running" while `up` refused "already running"; only `down` + `up` recovered, restarting
the healthy service too and rebinding default ports. The node script took an unreaped (zombie) node for a live one
("repo in use by a running node").
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from devnet.ipfs import PID_FILE, IpfsRepoInUse, start_ipfs
from devnet.ports import free_port
from devnet.processes import pid_alive, pid_runs

# A contract whose runtime code returns 42 (as in test_devnet_cli).
RUNTIME = "602a60005260206000f3"
INIT_CODE = "0x69" + RUNTIME + "600052600a6016f3"
DEV_ACCOUNT_0 = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


def fedledger(*args: str, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("fedledger")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "fedledger.cli"]
    return subprocess.run([*command, *args], cwd=cwd, env={**os.environ, "COLUMNS": "200"}, capture_output=True,
                          text=True, timeout=timeout)


def rpc(url: str, method: str, *params: object) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())["result"]


@pytest.fixture
def devnet(tmp_path: Path) -> Iterator[Path]:
    """A devnet up on free ports (detached, as a user starts it); always brought down afterwards."""
    state = tmp_path / "state"
    up = fedledger("devnet", "up", "--chain-port", str(free_port()), "--ipfs-port", str(free_port()),
                   "--swarm-port", str(free_port()), "--state-dir", str(state), "-d", cwd=tmp_path)
    assert up.returncode == 0, up.stderr
    try:
        yield state
    finally:
        fedledger("devnet", "down", "--state-dir", str(state), cwd=tmp_path)


def _services(state: Path) -> dict:
    return json.loads((state / "services.json").read_text())


def _status(state: Path) -> tuple[int, dict]:
    res = fedledger("devnet", "status", "--state-dir", str(state), "--json", cwd=state.parent)
    return res.returncode, json.loads(res.stdout)


def _kill9(pid: int) -> None:
    """A crash. The detached service is not our child: wait until it is gone or a zombie (an init that does not
    reap leaves it one — exactly what the liveness checks must see through)."""
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while pid_alive(pid):
        assert time.monotonic() < deadline, f"pid {pid} survived SIGKILL"
        time.sleep(0.05)


def _deploy_contract(rpc_url: str, state: Path) -> str:
    tx = rpc(rpc_url, "eth_sendTransaction", {"from": DEV_ACCOUNT_0, "data": INIT_CODE, "gas": hex(100_000)})
    deadline = time.monotonic() + 10
    while (receipt := rpc(rpc_url, "eth_getTransactionReceipt", tx)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # anvil dumps its state every second: wait for a dump that holds the contract before crashing it
    address = receipt["contractAddress"]
    dumped = time.time()
    state_file = state / "anvil-state.json"
    while state_file.stat().st_mtime < dumped + 0.2 or address[2:].lower() not in state_file.read_text().lower():
        assert time.time() < dumped + 10, "anvil never dumped its state"
        time.sleep(0.1)
    return address


def test_chain_killed_comes_back_on_its_port_with_its_contract_ipfs_untouched(devnet: Path) -> None:
    before = _services(devnet)
    rpc_url = before["chain"]["url"]
    contract = _deploy_contract(rpc_url, devnet)

    _kill9(before["chain"]["pid"])
    code, status = _status(devnet)
    assert code == 1 and status["state"] == {"chain": "down", "ipfs": "up"}, status

    again = fedledger("devnet", "up", "--state-dir", str(devnet), "-d", "--json", cwd=devnet.parent)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["actions"] == {"chain": "restarted", "ipfs": "running"}
    after = _services(devnet)
    assert after["chain"]["url"] == rpc_url and after["chain"]["port"] == before["chain"]["port"]
    assert after["chain"]["pid"] != before["chain"]["pid"]
    assert after["ipfs"] == before["ipfs"]                      # same pid, ports, peer id: untouched
    assert rpc(rpc_url, "eth_getCode", contract, "latest") == "0x" + RUNTIME
    code, status = _status(devnet)
    assert code == 0 and status["state"] == {"chain": "up", "ipfs": "up"}, status

    refused = fedledger("devnet", "up", "--state-dir", str(devnet), "-d", cwd=devnet.parent)
    assert refused.returncode == 1 and "already running" in refused.stderr


def test_ipfs_killed_comes_back_on_its_ports_with_its_blobs_chain_untouched(devnet: Path) -> None:
    from ledger_tools.blobstore import IpfsBlobStore

    before = _services(devnet)
    blob = os.urandom(2048)
    cid = IpfsBlobStore(before["ipfs"]["url"]).add(blob)

    _kill9(before["ipfs"]["pid"])
    assert (devnet / "ipfs" / "repo.lock").exists()            # left behind by the killed node
    plain = fedledger("devnet", "status", "--state-dir", str(devnet), cwd=devnet.parent)
    assert plain.returncode == 1 and "restarts ipfs" in plain.stdout
    row = next(line for line in plain.stdout.splitlines() if line.startswith("│ ipfs"))
    assert "down" in row and str(before["ipfs"]["port"]) in row

    again = fedledger("devnet", "up", "--state-dir", str(devnet), "-d", cwd=devnet.parent)
    assert again.returncode == 0, again.stderr
    assert "restarted" in again.stdout and "running (untouched)" in again.stdout
    after = _services(devnet)
    assert after["chain"] == before["chain"]                    # same pid: untouched
    assert after["ipfs"]["pid"] != before["ipfs"]["pid"]
    for key in ("port", "url"):
        assert after["ipfs"][key] == before["ipfs"][key]
    for key in ("swarm", "peer_id", "http_url"):                # same swarm port and identity: peers keep dialling it
        assert after["ipfs"]["extra"][key] == before["ipfs"]["extra"][key]
    store = IpfsBlobStore(after["ipfs"]["url"])
    assert store.has(cid) and store.cat(cid) == blob
    assert _status(devnet)[0] == 0


def test_a_chain_state_cut_short_is_one_line_and_ipfs_stays_up(devnet: Path) -> None:
    """anvil killed while dumping its state leaves a file it cannot load: say which file and what to do."""
    before = _services(devnet)
    _kill9(before["chain"]["pid"])
    state_file = devnet / "anvil-state.json"
    state_file.write_text(state_file.read_text()[:200])
    again = fedledger("devnet", "up", "--state-dir", str(devnet), "-d", cwd=devnet.parent)
    assert again.returncode == 1 and "Traceback" not in again.stderr, again.stderr
    assert "anvil failed to start" in again.stderr and f"{state_file} is unreadable" in again.stderr
    assert _services(devnet)["ipfs"] == before["ipfs"] and _status(devnet)[1]["state"]["ipfs"] == "up"


# ------------------------------------------------------------------ liveness: zombies, stale locks


@pytest.fixture
def zombie() -> Iterator[int]:
    """A child that has exited but is not reaped (state Z) until the test ends."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while _proc_state(child.pid) != "Z":
        assert time.monotonic() < deadline, "child never became a zombie"
        time.sleep(0.02)
    yield child.pid
    child.wait()


def _proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_a_zombie_is_dead(zombie: int) -> None:
    os.kill(zombie, 0)                                          # what a naive check sees: "alive"
    assert not pid_alive(zombie) and not pid_runs(zombie, b"python")
    assert pid_alive(os.getpid())


def _marker_process() -> subprocess.Popen:
    """A live process whose command line looks like our IPFS node's."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "ipfs_node.mjs"])


def test_ipfs_node_starts_over_a_zombie_owner_and_its_stale_lock(tmp_path: Path, zombie: int) -> None:
    """The pid file names an unreaped process and repo.lock is fresh (js-ipfs would honour it for 20 s)."""
    repo = tmp_path / "repo"
    with start_ipfs(repo_dir=repo, offline=True):              # a real repo
        pass
    (repo / PID_FILE).write_text(str(zombie))
    (repo / "repo.lock").mkdir()
    started = time.monotonic()
    with start_ipfs(repo_dir=repo, offline=True) as node:
        assert node.alive() and node.peer_id
    assert time.monotonic() - started < 15


def test_a_live_owner_keeps_its_repo_and_lock(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "repo.lock").mkdir()
    owner = _marker_process()
    try:
        (repo / PID_FILE).write_text(str(owner.pid))
        with pytest.raises(IpfsRepoInUse, match=f"pid {owner.pid}"):
            start_ipfs(repo_dir=repo, offline=True)
        assert (repo / "repo.lock").exists()
    finally:
        owner.kill()
        owner.wait()
