"""The local IPFS node: js-ipfs (ipfs-core + ipfs-http-server) serving the Kubo RPC API on loopback.

`start_ipfs()` launches `devnet/ipfs_node.mjs` under Node, waits until the RPC API answers an `id` call
(through ipfshttpclient, exactly as the blob store will use it) and returns an `IpfsProcess`. The repo
directory is persistent when given, so pinned blobs survive a restart; without one a temporary repo is
created and removed on stop. Nothing listens beyond 127.0.0.1 unless `host` says so.

Peering: `add_peering(repo, addrs)` lists other nodes' swarm multiaddrs in the repo; the node dials them and
keeps re-dialling them while disconnected (there is no DHT: bitswap only asks connected nodes for a block, so
the nodes of a federation must be connected to find each other's blobs). `swarm_connect` dials one right away.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from devnet.errors import DevnetError
from devnet.ports import free_port, port_in_use
from devnet.processes import pid_runs, start_process, terminate
from devnet.toolchain import NODE_MODULES, TOOLS_DIR, ToolMissing
from peer.tempdirs import owned_tempdir

_HERE = Path(__file__).resolve().parent
NODE_SCRIPT = _HERE / "ipfs_node.mjs"
POLYFILL = _HERE / "polyfill.cjs"
PID_FILE = "fedledger-node.pid"   # written by ipfs_node.mjs inside the repo
LOG_FILE = "fedledger-node.log"   # the node's stdout/stderr, inside the repo
PEERING_FILE = "fedledger-peering.json"  # swarm multiaddrs the node keeps connected to (read by ipfs_node.mjs)
_LOCK_STALE_S = 20.0  # js-ipfs refreshes repo.lock's mtime every 10 s and honours it for 20 s
_PEER_MULTIADDR = re.compile(r"^/(ip4|ip6|dns|dns4|dns6)/[^/]+/tcp/\d{1,5}/p2p/[1-9A-HJ-NP-Za-km-z]{40,80}$")

# ipfshttpclient 0.7.0 passes urllib3 a `strict` argument that urllib3 2.x deprecates on every request.
warnings.filterwarnings("ignore", message="The 'strict' parameter is no longer needed", category=FutureWarning)


class IpfsStartError(DevnetError):
    """The IPFS node could not be started (tool missing, node crashed, API never answered)."""


class IpfsPortInUse(IpfsStartError):
    """A requested port is already taken by another process."""

    def __init__(self, port: int, what: str, host: str) -> None:
        super().__init__(f"{what} port {host}:{port} is already in use")
        self.port, self.what, self.host = port, what, host


class IpfsRepoInUse(IpfsStartError):
    """Another live node already serves this repo directory."""


def is_ipfs_node_pid(pid: int) -> bool:
    """True when `pid` is alive and runs our node script (guards against signalling a recycled pid)."""
    return pid_runs(pid, b"ipfs_node.mjs")


@dataclass
class IpfsProcess:
    """A running local IPFS node. Use as a context manager or call `stop()`."""

    pid: int
    api_port: int
    swarm_port: int | None
    repo_dir: Path
    host: str = "127.0.0.1"          # what the swarm listens on
    peer_id: str | None = None
    log_path: Path | None = None
    api_host: str | None = None      # what the RPC API listens on (default: `host`)
    _popen: subprocess.Popen | None = field(default=None, repr=False)
    _temp_root: Path | None = field(default=None, repr=False)

    @property
    def api_url(self) -> str:
        """Multiaddr of the RPC API, for `ipfshttpclient.Client(addr)` and `IpfsBlobStore`."""
        return f"/ip4/{self.api_host or self.host}/tcp/{self.api_port}/http"

    @property
    def http_url(self) -> str:
        """The same RPC API as an http URL (`{http_url}/api/v0/id`)."""
        return f"http://{self.api_host or self.host}:{self.api_port}"

    @property
    def swarm_addr(self) -> str | None:
        if self.swarm_port is None:
            return None
        suffix = f"/p2p/{self.peer_id}" if self.peer_id else ""
        return f"/ip4/{self.host}/tcp/{self.swarm_port}{suffix}"

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return is_ipfs_node_pid(self.pid)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM (the node stops its API, then itself, closing the repo), wait; SIGKILL after `timeout`."""
        try:
            if self.alive():
                terminate(self.pid, self._popen, timeout)
        finally:
            if self._temp_root is not None:
                shutil.rmtree(self._temp_root, ignore_errors=True)
                self._temp_root = None

    def __enter__(self) -> "IpfsProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class IpfsPeeringError(DevnetError):
    """A swarm multiaddr that cannot be dialled (malformed, or the node refused / timed out)."""


def check_peer_multiaddr(addr: str) -> str:
    """`addr` when it is a dialable swarm multiaddr with a peer id (/ip4/H/tcp/P/p2p/ID), else IpfsPeeringError."""
    if not _PEER_MULTIADDR.match(addr) or "/ip4/0.0.0.0/" in addr:
        raise IpfsPeeringError(f"{addr!r} is not an IPFS swarm multiaddr like /ip4/192.0.2.5/tcp/4002/p2p/12D3Koo…",
                               hint="copy the `swarm` address `fedledger devnet status` prints on the other node")
    return addr


def read_peering(repo_dir: Path) -> list[str]:
    try:
        listed = json.loads((Path(repo_dir) / PEERING_FILE).read_text())
    except (OSError, ValueError):
        return []
    return [a for a in listed if isinstance(a, str)] if isinstance(listed, list) else []


def add_peering(repo_dir: Path, addrs: list[str]) -> list[str]:
    """Add swarm multiaddrs to the node's peering list (kept across restarts); return the whole list."""
    listed = read_peering(repo_dir)
    for addr in addrs:
        if check_peer_multiaddr(addr) not in listed:
            listed.append(addr)
    path = Path(repo_dir) / PEERING_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(listed, indent=1))
    os.replace(tmp, path)
    return listed


def _api_post(http_url: str, command: str, arg: str | None = None, timeout: float = 10.0) -> dict:
    import urllib.error
    import urllib.parse
    import urllib.request

    query = f"?arg={urllib.parse.quote(arg, safe='')}" if arg is not None else ""
    request = urllib.request.Request(f"{http_url}/api/v0/{command}{query}", data=b"", method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("Message", str(exc))
        except ValueError:
            message = str(exc)
        raise IpfsPeeringError(f"{command} {arg or ''}: {message}".strip()) from None
    except (OSError, ValueError) as exc:
        raise IpfsPeeringError(f"IPFS API {http_url} did not answer {command}: {exc}",
                               hint="is the node up? `fedledger devnet status`") from None


def swarm_connect(http_url: str, addr: str, timeout: float = 10.0) -> None:
    """Dial another node's swarm address now (raises IpfsPeeringError with the node's reason)."""
    _api_post(http_url, "swarm/connect", check_peer_multiaddr(addr), timeout=timeout)


def swarm_peers(http_url: str, timeout: float = 3.0) -> list[str] | None:
    """Peer ids the node is connected to, or None when its API does not answer."""
    try:
        answer = _api_post(http_url, "swarm/peers", timeout=timeout)
    except IpfsPeeringError:
        return None
    return sorted({str(p.get("Peer")) for p in answer.get("Peers") or []})


def api_answers(api_url: str, timeout: float = 2.0) -> str | None:
    """Peer id when an RPC API at `api_url` answers `id`, else None."""
    import ipfshttpclient

    try:
        with ipfshttpclient.Client(api_url, timeout=timeout) as client:
            return str(client.id()["ID"])
    except Exception:  # noqa: BLE001 - ipfshttpclient raises many unrelated types; any means "not answering"
        return None


def _installed_script() -> Path:
    """Copy ipfs_node.mjs next to .tools/node_modules so its bare ESM imports resolve (ESM ignores NODE_PATH)."""
    if not (NODE_MODULES / "ipfs-core").is_dir() or not (NODE_MODULES / "ipfs-http-server").is_dir():
        raise ToolMissing(f"js-ipfs not found in {NODE_MODULES}; run `bash scripts/setup.sh` (or `make setup`)")
    target = TOOLS_DIR / NODE_SCRIPT.name
    source = NODE_SCRIPT.read_bytes()
    if not target.exists() or target.read_bytes() != source:
        tmp = target.with_name(f".{target.name}.{os.getpid()}")
        tmp.write_bytes(source)
        os.replace(tmp, target)  # atomic: concurrent starters never see a half-written script
    return target


def _clear_stale_lock(repo_dir: Path) -> None:
    """Remove the repo.lock a killed node left behind (js-ipfs would honour it for 20 s), only when its owner is dead.

    The owner is the pid our node script writes before it opens the repo and removes after closing it: a live
    node there (a zombie or a recycled pid does not count) is IpfsRepoInUse. Without a pid file the last node
    closed the repo cleanly, so a lock still being refreshed belongs to some other program: it is left alone."""
    lock = repo_dir / "repo.lock"
    pid_file = repo_dir / PID_FILE
    if pid_file.exists():
        try:
            pid = int(pid_file.read_text().strip() or 0)
        except ValueError:
            pid = 0
        if pid and is_ipfs_node_pid(pid):
            raise IpfsRepoInUse(f"IPFS repo {repo_dir} is already served by a running node (pid {pid})",
                                hint=f"stop it first (kill {pid}, or `fedledger devnet down`)")
    else:
        try:
            if time.time() - lock.stat().st_mtime < _LOCK_STALE_S:
                return
        except OSError:
            return  # no lock
    shutil.rmtree(lock, ignore_errors=True)


def _log_tail(path: Path, start: int = 0, lines: int = 12) -> str:
    """Last `lines` lines the node wrote after byte offset `start` (this launch only)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            text = fh.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])
    except OSError:
        return ""


def start_ipfs(
    api_port: int | None = None,
    swarm_port: int | None = None,
    repo_dir: Path | None = None,
    offline: bool = False,
    *,
    host: str = "127.0.0.1",
    detach: bool = False,
    startup_timeout: float = 30.0,
    peers: list[str] | None = None,
    api_host: str | None = None,
) -> IpfsProcess:
    """Start a js-ipfs node with the Kubo RPC API and wait until it answers.

    Ports default to free loopback ports; a given port that is taken raises `IpfsPortInUse`. `offline=True`
    runs without any swarm listener (a single node). `detach=True` starts the node in its own session so it
    outlives this process; otherwise it stops itself when this process exits. `peers` are added to the
    repo's peering list (swarm multiaddrs the node keeps connected to). `api_host` binds the RPC API elsewhere
    than the swarm (e.g. loopback: an institution's API serves only its own peer, while its swarm faces the others).
    """
    node = shutil.which("node")
    if node is None:
        raise ToolMissing("`node` (Node.js >= 20) is not on PATH; install it (e.g. apt-get install nodejs)")
    script = _installed_script()
    api_host = api_host or host
    for port, what, where in ((api_port, "IPFS API", api_host), (None if offline else swarm_port, "IPFS swarm", host)):
        if port is not None and port_in_use(port, where):
            raise IpfsPortInUse(port, what, where)

    temp_root = None
    if repo_dir is None:
        # named after this process: the next start removes the repo of a run killed before it could (GBs of blobs);
        # a detached node outlives this process, so its repo must not carry our pid
        temp_root = Path(tempfile.mkdtemp(prefix="fedledger-ipfs-")) if detach else owned_tempdir("fedledger-ipfs-")
        repo_dir = temp_root / "repo"
    repo_dir = Path(repo_dir).resolve()
    repo_dir.mkdir(parents=True, exist_ok=True)
    try:
        if peers:
            add_peering(repo_dir, list(peers))
        _clear_stale_lock(repo_dir)
        # Ports picked here may be grabbed by someone else before the node binds them: retry picked ports.
        attempts = 1 if (api_port is not None and (offline or swarm_port is not None)) else 3
        for attempt in range(attempts):
            proc = _launch(node, script, (host, api_host), api_port, swarm_port, repo_dir, offline, detach,
                           startup_timeout)
            if isinstance(proc, IpfsProcess):
                proc._temp_root = temp_root
                return proc
            if attempt == attempts - 1 or "EADDRINUSE" not in proc:
                raise IpfsStartError(f"IPFS node failed to start (repo {repo_dir}):\n{proc}")
    except BaseException:
        if temp_root is not None:
            shutil.rmtree(temp_root, ignore_errors=True)
        raise
    raise AssertionError("unreachable")


def _launch(
    node: str, script: Path, hosts: tuple[str, str], api_port: int | None, swarm_port: int | None, repo_dir: Path,
    offline: bool, detach: bool, startup_timeout: float,
) -> IpfsProcess | str:
    """One launch attempt: the running node, or the log tail explaining why it died."""
    host, api_host = hosts
    api = api_port if api_port is not None else free_port(api_host)
    swarm = None if offline else (swarm_port if swarm_port is not None else free_port(host))
    cmd = [node, "--require", str(POLYFILL), str(script), "--repo", str(repo_dir), "--api-port", str(api),
           "--host", host, "--api-host", api_host]
    if offline:
        cmd.append("--offline")
    else:
        cmd += ["--swarm-port", str(swarm)]
    if not detach:
        cmd += ["--parent-pid", str(os.getpid())]
    log_path = repo_dir / LOG_FILE
    log_start = log_path.stat().st_size if log_path.exists() else 0
    popen = start_process(cmd, log_path=log_path, append=True, cwd=script.parent, new_session=detach)
    proc = IpfsProcess(pid=popen.pid, api_port=api, swarm_port=swarm, repo_dir=repo_dir, host=host, api_host=api_host,
                       log_path=log_path, _popen=popen)
    deadline = time.monotonic() + startup_timeout
    try:
        while time.monotonic() < deadline:
            if popen.poll() is not None:
                return _log_tail(log_path, log_start) or f"node exited with code {popen.returncode}"
            peer_id = api_answers(proc.api_url, timeout=1.0)
            if peer_id:
                proc.peer_id = peer_id
                return proc
            time.sleep(0.1)
    except BaseException:  # interrupted while waiting: a detached node would otherwise be left behind
        proc.stop()
        raise
    proc.stop()
    raise IpfsStartError(f"IPFS API at {proc.api_url} did not answer within {startup_timeout:.0f}s; "
                         f"log {log_path}:\n{_log_tail(log_path, log_start)}")


def read_ready_event(log_path: Path) -> dict | None:
    """The last `ready` event the node printed to its log (peer id, API and swarm addresses)."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        if line.startswith("{") and '"event":"ready"' in line:
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None
