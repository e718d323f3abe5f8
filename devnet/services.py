"""The local devnet as a whole: anvil (chain) + the js-ipfs node, started together, tracked in a state dir.

Layout of the state dir (default `.fedledger/devnet`):

    services.json      pids, ports and URLs of the services (from `up` until `down`, crashes included)
    anvil-state.json   the chain (loaded on start, dumped on graceful stop and every second)
    anvil.log          anvil's output
    ipfs/              the IPFS repo (pinned blobs survive a restart); ipfs/fedledger-node.log

An institution runs only the IPFS node (`ipfs_only=True`: no chain record) and lists the other nodes' swarm
addresses (`ipfs_peers`) so that blobs travel between the federation's nodes.

Services run as detached processes (their own session), so the CLI that started them may exit;
`devnet_down` finds them again by pid (checking the pid is still ours) and stops them gracefully. After a crash
of one service, `devnet_up` restarts only that one, on its recorded ports (`devnet.launch.restart_dead`).
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from devnet.anvil import AnvilProcess, is_anvil_pid
from devnet.errors import DevnetAlreadyRunning, DevnetError, DevnetPortInUse
from devnet.ipfs import IpfsProcess, add_peering, api_answers, is_ipfs_node_pid, read_peering, swarm_peers
from devnet.launch import (
    ANVIL_STATE_FILE,
    chain_record,
    ipfs_record,
    launch_chain,
    launch_ipfs,
    restart_dead,
    service_alive,
)
from devnet.ports import port_in_use
from devnet.records import DevnetServices, ServiceRecord, ServiceStatus, read_services, services_path, write_services

DEFAULT_STATE_DIR = Path(".fedledger/devnet")
DEFAULT_CHAIN_PORT = 8545
DEFAULT_IPFS_PORT = 5001


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
    When the state dir already records a devnet, only its services that are down are restarted, on their
    recorded hosts and ports (the chain from its state file); the given ports and hosts are then ignored.
    `.actions` of the result says what happened to each service ("started", "restarted", "running").
    Raises DevnetAlreadyRunning / DevnetPortInUse / DevnetError (IpfsPeeringError for a malformed peer).
    """
    state_dir = Path(state_dir).resolve()
    chain_port = None if ipfs_only else (chain_port or None)
    ipfs_port = ipfs_port or None
    swarm_port = swarm_port or None
    existing = read_services(state_dir)
    if existing is not None:
        if ipfs_peers and not all(service_alive(r) for r in existing.records()):  # kept by the restarted node
            add_peering(Path(existing.ipfs.extra.get("repo", state_dir / "ipfs")), list(ipfs_peers))
        return restart_dead(existing)
    checks = ((chain_port, "chain RPC", "--chain-port", host), (ipfs_port, "IPFS API", "--ipfs-port",
              ipfs_api_host or host), (swarm_port, "IPFS swarm", "--swarm-port", host))
    for port, what, flag, where in checks:
        if port is not None and port_in_use(port, where):
            raise DevnetPortInUse(f"{what} port {where}:{port} is already in use",
                                  hint=f"pick another with {flag} N (0 = any free port) or stop what listens there")
    state_dir.mkdir(parents=True, exist_ok=True)

    anvil = None
    if not ipfs_only:
        anvil = launch_chain(state_dir, chain_port, host,
                             port_hint="pick another with --chain-port N (0 = any free port)")
    try:
        ipfs = launch_ipfs(state_dir, ipfs_port, swarm_port, host, ipfs_api_host, peers=ipfs_peers)
    except BaseException:
        if anvil is not None:
            anvil.stop()
        raise
    services = DevnetServices(state_dir=state_dir, chain=chain_record(anvil) if anvil is not None else None,
                              ipfs=ipfs_record(ipfs))
    services.actions = {r.name: "started" for r in services.records()}
    write_services(services)
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
    still = [r.name for r in services.records() if service_alive(r)]
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
    """Each recorded service on its own: "up" (answers: block number / swarm address), "not answering" (its
    process runs but its API is silent) or "down" (its process is gone or a zombie: `devnet up` restarts it)."""
    services = read_services(state_dir)
    if services is None:
        return []
    statuses = []
    chain = services.chain
    if chain is not None:
        running = is_anvil_pid(chain.pid)
        block = chain_block_number(chain.url) if running else None
        statuses.append(_status(chain, running, None if block is None else f"block {block}"))
    node = services.ipfs
    running = is_ipfs_node_pid(node.pid)
    peer = api_answers(node.url) if running else None
    statuses.append(_status(node, running, _ipfs_detail(services, peer) if peer else None))
    return statuses


def _status(record: ServiceRecord, running: bool, answer: str | None) -> ServiceStatus:
    if answer is not None:
        return ServiceStatus(record.name, record.url, record.pid, True, answer, "up", record.port)
    if running:
        return ServiceStatus(record.name, record.url, record.pid, False, f"pid {record.pid} runs but does not answer",
                             "not answering", record.port)
    return ServiceStatus(record.name, record.url, record.pid, False,
                         f"pid {record.pid} is gone; `fedledger devnet up` restarts it on port {record.port}",
                         "down", record.port)


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
    "ANVIL_STATE_FILE", "DEFAULT_CHAIN_PORT", "DEFAULT_IPFS_PORT", "DEFAULT_STATE_DIR", "DevnetAlreadyRunning",
    "DevnetPortInUse", "chain_block_number", "devnet_down", "devnet_status", "devnet_up",
]
