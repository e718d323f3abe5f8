"""Start and stop a local anvil devnet (Foundry, from npm) on a free or given loopback port.

With `state_file`, anvil loads the chain from it on start and dumps it on graceful exit (SIGTERM); it also
dumps every `state_interval` seconds so that even a SIGKILL loses at most that much.

anvil runs with `--prune-history STATE_HISTORY`: it keeps that many historical states in memory and writes none to
disk. By default it spills every state older than 500 blocks to ~/.foundry/anvil/tmp/anvil-state-*, keeps up to
3,600 there, and a SIGKILLed anvil never removes its dir (106 of them, 70 GB, once filled this machine's disk).
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from devnet.errors import DevnetError
from devnet.ports import free_port, port_in_use
from devnet.processes import pid_runs, start_process, terminate
from devnet.toolchain import tool_path

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_CHAIN_ID = 31337
# Historical states anvil keeps (memory only). The ledger binding replays a failed transaction with `eth_call`
# at its (recent) block; logs, blocks and receipts of the whole chain are kept regardless; older states are dropped.
# Not `--max-persisted-states 0`: that keeps 500 states in memory (a 20k-slot state, 800 blocks: 1.1 GB RSS vs 0.2 GB).
STATE_HISTORY = 64


class AnvilStartError(DevnetError):
    """anvil could not be started (tool missing, process died, RPC never answered)."""


class PortInUse(AnvilStartError):
    """The requested RPC port is already taken by another process."""

    def __init__(self, port: int, host: str) -> None:
        super().__init__(f"anvil RPC port {host}:{port} is already in use; pick another port or stop what holds it")
        self.port, self.host = port, host


@dataclass(frozen=True)
class DevAccount:
    """One of anvil's pre-funded accounts (derived from its public default mnemonic: never use on a real chain)."""

    address: str
    private_key: str


@lru_cache(maxsize=1)
def _derive_dev_accounts() -> tuple[DevAccount, ...]:
    from eth_account import Account

    Account.enable_unaudited_hdwallet_features()
    accounts = []
    for i in range(10):
        acct = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{i}")
        accounts.append(DevAccount(acct.address, "0x" + acct.key.hex().removeprefix("0x")))
    return tuple(accounts)


def dev_accounts() -> list[DevAccount]:
    """The 10 funded accounts anvil creates from its default mnemonic (10,000 ETH each)."""
    return list(_derive_dev_accounts())


def rpc_answers(rpc_url: str, timeout: float = 1.0) -> int | None:
    """Chain id when a JSON-RPC node answers at `rpc_url`, else None."""
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.loads(response.read())["result"], 16)
    except (OSError, ValueError, KeyError, urllib.error.URLError):
        return None


def is_anvil_pid(pid: int) -> bool:
    """True when `pid` is alive and is an anvil process (guards against signalling a recycled pid)."""
    return pid_runs(pid, b"anvil")


@dataclass
class AnvilProcess:
    """A running anvil. Use as a context manager or call `stop()`; `AnvilProcess(pid, port)` re-attaches."""

    pid: int
    port: int
    host: str = "127.0.0.1"
    state_file: Path | None = None
    log_path: Path | None = None
    _popen: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def rpc_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return is_anvil_pid(self.pid)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM and wait, so anvil dumps `--state`; SIGKILL only if it does not exit within `timeout`."""
        if self.alive():
            terminate(self.pid, self._popen, timeout)

    def __enter__(self) -> "AnvilProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_anvil(
    port: int | None = None,
    state_file: Path | None = None,
    host: str = "127.0.0.1",
    block_time: float | None = None,
    *,
    state_interval: int = 1,
    log_path: Path | None = None,
    timeout: float = 15.0,
) -> AnvilProcess:
    """Start anvil and wait until its JSON-RPC answers.

    `port=None` takes a free port; a given port that is taken raises `PortInUse`. `state_file` persists the
    chain across restarts (loaded if it exists). `block_time=None` mines a block per transaction (instant).
    """
    if port is None:
        port = free_port(host)
    elif port_in_use(port, host):
        raise PortInUse(port, host)
    args = [str(tool_path("anvil")), "--host", host, "--port", str(port), "--chain-id", str(ANVIL_CHAIN_ID),
            "--prune-history", str(STATE_HISTORY)]
    if state_file is not None:
        state_file = Path(state_file)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        args += ["--state", str(state_file), "--state-interval", str(state_interval)]
    if block_time is not None:
        args += ["--block-time", str(block_time)]
    if log_path is None:
        log_path = Path(tempfile.gettempdir()) / f"fedledger-anvil-{port}.log"
    popen = start_process(args, log_path=log_path)
    proc = AnvilProcess(popen.pid, port, host, state_file, log_path, popen)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise AnvilStartError(f"anvil exited with code {popen.returncode}: {_log_tail(log_path)}")
        if rpc_answers(proc.rpc_url, timeout=0.5) is not None:
            return proc
        time.sleep(0.05)
    proc.stop()
    raise AnvilStartError(f"anvil did not answer on {proc.rpc_url} within {timeout:.0f}s: {_log_tail(log_path)}")


def _log_tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------- devnet-only RPC helpers


def _rpc(rpc_url: str, method: str, params: list) -> object:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        reply = json.loads(response.read())
    if "error" in reply:
        raise AnvilStartError(f"{method} failed: {reply['error']}")
    return reply.get("result")


def increase_time(rpc_url: str, seconds: int) -> None:
    """Move the devnet clock forward and mine a block, so the next transaction sees the new time."""
    _rpc(rpc_url, "evm_increaseTime", [int(seconds)])
    _rpc(rpc_url, "evm_mine", [])


def mine(rpc_url: str) -> None:
    _rpc(rpc_url, "evm_mine", [])


def set_balance(rpc_url: str, address: str, wei: int) -> None:
    _rpc(rpc_url, "anvil_setBalance", [address, hex(wei)])


def extra_accounts(rpc_url: str, n: int, *, seed: str = "fedledger", wei: int = 10**21) -> list[DevAccount]:
    """`n` deterministic throw-away accounts (beyond anvil's 10), each given `wei` on the devnet."""
    from eth_account import Account

    accounts = []
    for i in range(n):
        key = hashlib.sha256(f"{seed}/{i}".encode()).hexdigest()
        acct = Account.from_key(key)
        set_balance(rpc_url, acct.address, wei)
        accounts.append(DevAccount(acct.address, "0x" + key))
    return accounts
