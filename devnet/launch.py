"""Start one devnet service (anvil, the IPFS node) with its failures as one-line DevnetErrors, and bring back
the dead services of a recorded devnet exactly where they ran.

After a crash (kill -9, OOM) of one service the state dir still records its host, ports, chain state file and
IPFS repo; `restart_dead` restarts only what is down, on those same ports (peers and other machines keep their
URLs and swarm addresses), with the chain reloaded from its state file, and never touches a running service.
"""
from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from devnet.anvil import AnvilProcess, AnvilStartError, PortInUse, is_anvil_pid, start_anvil
from devnet.errors import DevnetAlreadyRunning, DevnetError, DevnetPortInUse
from devnet.ipfs import IpfsPortInUse, IpfsProcess, IpfsStartError, is_ipfs_node_pid, start_ipfs
from devnet.records import DevnetServices, ServiceRecord, services_path, write_services

ANVIL_STATE_FILE = "anvil-state.json"


def service_alive(record: ServiceRecord) -> bool:
    """The recorded pid still runs that service (a zombie or a recycled pid does not count)."""
    return is_anvil_pid(record.pid) if record.name == "chain" else is_ipfs_node_pid(record.pid)


def launch_chain(state_dir: Path, port: int | None, host: str, *, port_hint: str) -> AnvilProcess:
    """anvil on `port` (None: any free port), its chain loaded from / dumped to the state dir's state file."""
    try:
        return start_anvil(port, state_file=state_dir / ANVIL_STATE_FILE, host=host, log_path=state_dir / "anvil.log")
    except PortInUse as exc:
        raise DevnetPortInUse(str(exc), hint=port_hint) from exc
    except AnvilStartError as exc:
        hint = f"see {state_dir / 'anvil.log'}"
        if "--state" in str(exc):  # a dump cut short by a kill: anvil cannot load it
            hint = (f"the chain state {state_dir / ANVIL_STATE_FILE} is unreadable (anvil killed while writing it?); "
                    "move it aside to start an empty chain")
        raise DevnetError(f"anvil failed to start: {exc}", hint=hint) from exc


def launch_ipfs(state_dir: Path, api_port: int | None, swarm_port: int | None, host: str, api_host: str | None, *,
                peers: list[str] | None = None, port_hint: str | None = None) -> IpfsProcess:
    """The detached IPFS node serving the state dir's repo (`port_hint`: the hint for a taken port, default: the
    flag that picks another)."""
    try:
        return start_ipfs(api_port, swarm_port, repo_dir=state_dir / "ipfs", host=host, detach=True, peers=peers,
                          api_host=api_host)
    except IpfsPortInUse as exc:
        flag = "--swarm-port" if exc.what == "IPFS swarm" else "--ipfs-port"
        raise DevnetPortInUse(str(exc), hint=port_hint or f"pick another with {flag} N (0 = any free port)") from exc
    except (IpfsStartError, OSError) as exc:
        raise DevnetError(f"IPFS node failed to start: {exc}",
                          hint="run `bash scripts/setup.sh` if js-ipfs is missing") from exc


def chain_record(anvil: AnvilProcess) -> ServiceRecord:
    return ServiceRecord("chain", anvil.pid, anvil.port, anvil.rpc_url,
                         {"state_file": str(anvil.state_file), "log": str(anvil.log_path)})


def ipfs_record(ipfs: IpfsProcess) -> ServiceRecord:
    return ServiceRecord("ipfs", ipfs.pid, ipfs.api_port, ipfs.api_url,
                         {"http_url": ipfs.http_url, "peer_id": ipfs.peer_id, "swarm": ipfs.swarm_addr,
                          "repo": str(ipfs.repo_dir), "log": str(ipfs.log_path)})


def _ipfs_where(record: ServiceRecord) -> tuple[str, str, int | None]:
    """(swarm host, API host, swarm port) of a recorded node, read back from its API and swarm multiaddrs."""
    api_host = record.url.split("/")[2]               # /ip4/H/tcp/P/http
    swarm = record.extra.get("swarm") or ""
    parts = swarm.split("/")                          # /ip4/H/tcp/P/p2p/ID
    if len(parts) >= 5 and parts[4].isdigit():
        return parts[2], api_host, int(parts[4])
    return api_host, api_host, None


def _restart(record: ServiceRecord, state_dir: Path) -> ServiceRecord:
    hint = (f"the port recorded in {services_path(state_dir)} is now held by another process: stop it, or "
            f"`fedledger devnet down --state-dir {state_dir}` and `up` on other ports")
    if record.name == "chain":
        host = urlsplit(record.url).hostname or "127.0.0.1"
        return chain_record(launch_chain(state_dir, record.port, host, port_hint=hint))
    host, api_host, swarm_port = _ipfs_where(record)
    return ipfs_record(launch_ipfs(state_dir, record.port, swarm_port, host, api_host, port_hint=hint))


def restart_dead(existing: DevnetServices) -> DevnetServices:
    """Restart every recorded service that is down, on its recorded ports; leave the running ones alone.

    services.json is rewritten after each restart, so a failure half-way still records the right pids.
    Raises DevnetAlreadyRunning when nothing is down, DevnetPortInUse / DevnetError when a restart fails."""
    state_dir = Path(existing.state_dir)
    dead = [r.name for r in existing.records() if not service_alive(r)]
    if not dead:
        raise DevnetAlreadyRunning(
            f"devnet already running from {state_dir} (chain {existing.rpc_url or '-'}, ipfs {existing.ipfs_api_url})",
            hint="`fedledger devnet status` to inspect it, `fedledger devnet down` to stop it",
        )
    existing.actions = {r.name: "running" for r in existing.records()}
    for name in ("chain", "ipfs"):  # the chain first: peers waiting for it proceed as soon as it answers
        if name not in dead:
            continue
        fresh = _restart(existing.chain if name == "chain" else existing.ipfs, state_dir)  # type: ignore[arg-type]
        if name == "chain":
            existing.chain = fresh
        else:
            existing.ipfs = fresh
        existing.actions[name] = "restarted"
        write_services(existing)
    return existing
