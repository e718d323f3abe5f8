"""The local devnet as a whole: anvil (chain) + the js-ipfs node, started together, tracked in a state dir.

Layout of the state dir (default `.fedledger/devnet`):

    services.json      pids, ports and URLs of the running services (present only while "up")
    anvil-state.json   the chain (loaded on start, dumped on graceful stop and every second)
    anvil.log          anvil's output
    ipfs/              the IPFS repo (pinned blobs survive a restart); ipfs/fedledger-node.log

An institution runs only the IPFS node (`ipfs_only=True`: no chain record) and lists the other nodes' swarm
addresses (`ipfs_peers`) so that blobs travel between the federation's nodes.

Services run as detached processes (their own session), so the CLI that started them may exit;
`devnet_down` finds them again by pid (checking the pid is still ours) and stops them gracefully.
"""
from __future__ import annotations

import json
import os
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devnet.anvil import AnvilProcess, AnvilStartError, PortInUse, is_anvil_pid, rpc_answers, start_anvil
from devnet.errors import DevnetError
from devnet.ipfs import (
    IpfsPeeringError,
    IpfsPortInUse,
    IpfsProcess,
    IpfsStartError,
    api_answers,
    is_ipfs_node_pid,
    read_peering,
    start_ipfs,
    swarm_peers,
)
from devnet.ports import port_in_use

DEFAULT_STATE_DIR = Path(".fedledger/devnet")
DEFAULT_CHAIN_PORT = 8545
DEFAULT_IPFS_PORT = 5001
SERVICES_FILE = "services.json"
ANVIL_STATE_FILE = "anvil-state.json"


class DevnetAlreadyRunning(DevnetError):
    pass


class DevnetPortInUse(DevnetError):
    pass


@dataclass
class ServiceRecord:
    """One running service as recorded in services.json."""

    name: str          # "chain" | "ipfs"
    pid: int
    port: int
    url: str
    extra: dict = field(default_factory=dict)


@dataclass
class DevnetServices:
    state_dir: Path
    chain: ServiceRecord | None    # None on an IPFS-only node (an institution's)
    ipfs: ServiceRecord
    started_at: float = field(default_factory=time.time)

    @property
    def rpc_url(self) -> str | None:
        return self.chain.url if self.chain else None

    @property
    def ipfs_swarm(self) -> str | None:
        """The node's swarm multiaddr with its peer id: what the other nodes pass to --ipfs-peer."""
        return self.ipfs.extra.get("swarm")

    @property
    def ipfs_api_url(self) -> str:
        return self.ipfs.url

    def records(self) -> list[ServiceRecord]:
        return [r for r in (self.chain, self.ipfs) if r is not None]

    def to_json(self) -> str:
        return json.dumps(
            {"state_dir": str(self.state_dir), "started_at": self.started_at,
             "chain": asdict(self.chain) if self.chain else None, "ipfs": asdict(self.ipfs)},
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> "DevnetServices":
        raw = json.loads(text)
        chain = ServiceRecord(**raw["chain"]) if raw.get("chain") else None
        return cls(Path(raw["state_dir"]), chain, ServiceRecord(**raw["ipfs"]), raw.get("started_at", 0.0))


@dataclass
class ServiceStatus:
    name: str
    url: str
    pid: int
    alive: bool
    detail: str      # block number for the chain, peer id for IPFS, or why it is not answering


def services_path(state_dir: Path) -> Path:
    return Path(state_dir) / SERVICES_FILE


def read_services(state_dir: Path = DEFAULT_STATE_DIR) -> DevnetServices | None:
    """The services recorded in `state_dir`, or None when the devnet is not up there."""
    path = services_path(state_dir)
    if not path.exists():
        return None
    try:
        return DevnetServices.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise DevnetError(f"{path} is corrupt ({exc})", hint=f"stop leftover processes, then delete {path}") from exc


def _write_services(services: DevnetServices) -> None:
    path = services_path(services.state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(services.to_json())
    os.replace(tmp, path)


def _service_alive(record: ServiceRecord) -> bool:
    return is_anvil_pid(record.pid) if record.name == "chain" else is_ipfs_node_pid(record.pid)


def devnet_up(
    state_dir: Path = DEFAULT_STATE_DIR,
    chain_port: int | None = DEFAULT_CHAIN_PORT,
    ipfs_port: int | None = DEFAULT_IPFS_PORT,
    host: str = "127.0.0.1",
    *,
    ipfs_only: bool = False,
    swarm_port: int | None = None,
    ipfs_peers: list[str] | None = None,
    ipfs_api_host: str | None = None,
) -> DevnetServices:
    """Start anvil (unless `ipfs_only`) and the IPFS node (detached), wait until they answer, record them.

    A port of None or 0 means "any free port". `ipfs_peers` are swarm multiaddrs the node keeps connected to;
    `ipfs_api_host` binds the IPFS API elsewhere than `host` (default: `host`).
    Raises DevnetAlreadyRunning / DevnetPortInUse / DevnetError (IpfsPeeringError for a malformed peer).
    """
    state_dir = Path(state_dir).resolve()
    chain_port = None if ipfs_only else (chain_port or None)
    ipfs_port = ipfs_port or None
    swarm_port = swarm_port or None
    existing = read_services(state_dir)
    if existing is not None:
        if any(_service_alive(r) for r in existing.records()):
            raise DevnetAlreadyRunning(
                f"devnet already running from {state_dir} (chain {existing.rpc_url or '-'}, "
                f"ipfs {existing.ipfs_api_url})",
                hint="`fedledger devnet status` to inspect it, `fedledger devnet down` to stop it",
            )
        services_path(state_dir).unlink(missing_ok=True)  # leftovers of a crashed devnet
    checks = ((chain_port, "chain RPC", "--chain-port", host), (ipfs_port, "IPFS API", "--ipfs-port",
              ipfs_api_host or host), (swarm_port, "IPFS swarm", "--swarm-port", host))
    for port, what, flag, where in checks:
        if port is not None and port_in_use(port, where):
            raise DevnetPortInUse(f"{what} port {where}:{port} is already in use",
                                  hint=f"pick another with {flag} N (0 = any free port) or stop what listens there")
    state_dir.mkdir(parents=True, exist_ok=True)

    anvil = None
    if not ipfs_only:
        try:
            anvil = start_anvil(chain_port, state_file=state_dir / ANVIL_STATE_FILE, host=host,
                                log_path=state_dir / "anvil.log")
        except PortInUse as exc:
            raise DevnetPortInUse(str(exc), hint="pick another with --chain-port N (0 = any free port)") from exc
        except AnvilStartError as exc:
            raise DevnetError(f"anvil failed to start: {exc}", hint=f"see {state_dir / 'anvil.log'}") from exc
    try:
        ipfs = start_ipfs(ipfs_port, swarm_port, repo_dir=state_dir / "ipfs", host=host, detach=True,
                          peers=ipfs_peers, api_host=ipfs_api_host)
    except BaseException as exc:
        if anvil is not None:
            anvil.stop()
        if isinstance(exc, IpfsPortInUse):
            flag = "--swarm-port" if exc.what == "IPFS swarm" else "--ipfs-port"
            raise DevnetPortInUse(str(exc), hint=f"pick another with {flag} N (0 = any free port)") from exc
        if isinstance(exc, (IpfsStartError, OSError)):
            raise DevnetError(f"IPFS node failed to start: {exc}",
                              hint="run `bash scripts/setup.sh` if js-ipfs is missing") from exc
        raise

    chain = None
    if anvil is not None:
        chain = ServiceRecord("chain", anvil.pid, anvil.port, anvil.rpc_url,
                              {"state_file": str(anvil.state_file), "log": str(anvil.log_path)})
    services = DevnetServices(
        state_dir=state_dir,
        chain=chain,
        ipfs=ServiceRecord("ipfs", ipfs.pid, ipfs.api_port, ipfs.api_url,
                           {"http_url": ipfs.http_url, "peer_id": ipfs.peer_id, "swarm": ipfs.swarm_addr,
                            "repo": str(ipfs.repo_dir), "log": str(ipfs.log_path)}),
    )
    _write_services(services)
    return services


def devnet_down(state_dir: Path = DEFAULT_STATE_DIR, timeout: float = 15.0) -> list[tuple[str, bool]]:
    """Stop the recorded services gracefully (IPFS first, then anvil so it dumps its state) and wait.

    Returns (service name, was running) pairs; an empty list when nothing was recorded.
    """
    services = read_services(state_dir)
    if services is None:
        return []
    result = []
    ipfs_was_alive = is_ipfs_node_pid(services.ipfs.pid)
    if ipfs_was_alive:
        repo = Path(services.ipfs.extra.get("repo", "."))
        IpfsProcess(services.ipfs.pid, services.ipfs.port, None, repo).stop(timeout)
    result.append(("ipfs", ipfs_was_alive))
    if services.chain is not None:
        anvil_was_alive = is_anvil_pid(services.chain.pid)
        if anvil_was_alive:
            AnvilProcess(services.chain.pid, services.chain.port).stop(timeout)
        result.append(("chain", anvil_was_alive))
    still = [r.name for r in services.records() if _service_alive(r)]
    if still:
        raise DevnetError(f"could not stop {', '.join(still)}",
                          hint="check the pids in " + str(services_path(state_dir)))
    services_path(state_dir).unlink(missing_ok=True)
    return result


def chain_block_number(rpc_url: str, timeout: float = 2.0) -> int | None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": []}).encode()
    request = urllib.request.Request(rpc_url, data=body, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(json.loads(response.read())["result"], 16)
    except (OSError, ValueError, KeyError):
        return None


def devnet_status(state_dir: Path = DEFAULT_STATE_DIR) -> list[ServiceStatus]:
    """Liveness of each recorded service: pid alive, and what it answers (block number / IPFS peer id)."""
    services = read_services(state_dir)
    if services is None:
        return []
    statuses = []
    chain = services.chain
    if chain is not None:
        alive = is_anvil_pid(chain.pid)
        block = chain_block_number(chain.url) if alive else None
        statuses.append(ServiceStatus("chain", chain.url, chain.pid, alive and block is not None,
                                      f"block {block}" if block is not None
                                      else ("not answering" if alive else "not running")))
    node = services.ipfs
    alive = is_ipfs_node_pid(node.pid)
    peer = api_answers(node.url) if alive else None
    detail = _ipfs_detail(services, peer) if peer else ("not answering" if alive else "not running")
    statuses.append(ServiceStatus("ipfs", node.url, node.pid, alive and peer is not None, detail))
    return statuses


def _ipfs_detail(services: DevnetServices, peer: str) -> str:
    """Swarm address (what other nodes peer with) and how many of the listed peering nodes are connected."""
    listed = read_peering(Path(services.ipfs.extra.get("repo", services.state_dir / "ipfs")))
    connected = swarm_peers(services.ipfs.extra.get("http_url", "")) or []
    wanted = {a.rsplit("/p2p/", 1)[-1] for a in listed}
    detail = f"swarm {services.ipfs_swarm or f'(offline) peer {peer}'}; {len(connected)} swarm peers"
    if wanted:
        detail += f", {len(wanted & set(connected))}/{len(wanted)} peering connected"
    return detail


__all__ = [
    "DEFAULT_CHAIN_PORT", "DEFAULT_IPFS_PORT", "DEFAULT_STATE_DIR", "DevnetAlreadyRunning", "DevnetError",
    "IpfsPeeringError",
    "DevnetPortInUse", "DevnetServices", "ServiceRecord", "ServiceStatus", "chain_block_number", "devnet_down",
    "devnet_status", "devnet_up", "read_services", "rpc_answers",
]
