"""A federation spread over the chaos topology: anvil + IPFS on the `chain` machine, one peer per institution.

Built from the pieces the other harnesses use: `create_local_federation` (run from the host over the bridge:
keys, genesis on IPFS, deploy, gas money), `PeerProcess` (a real `fedledger peer run --json` whose log lines are
followed) run under `ip netns exec`, and the devnet's launchers started inside the chain machine
(`bench.chaos_service`). Each peer's `peer.toml` is rewritten for its machine: gossip listens on the
institution's address and bootstraps to the others'; chain and IPFS are the chain machine's addresses.

Faults need hooks that exist only here: every peer runs under `bench.chaos_clock`, which offsets its wall
clock by the number in a file (`skew()` changes it while the peer runs, no restart), and one peer's node
directory can sit on a small tmpfs (`fill_disk()` fills it to the last byte). `close()` kills everything and
unmounts, whatever happened.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # `helpers.`: the peer-process follower the other harnesses use

from bench.chaos_net import Topology  # noqa: E402
from devnet.bootstrap import LOCAL_ROUND_PARAMS, LocalFederation, create_local_federation  # noqa: E402
from devnet.processes import pid_alive, start_process  # noqa: E402
from helpers.peer_proc import PeerProcess  # noqa: E402
from ledger_tools.config import RoundParams  # noqa: E402
from peer.config import PeerConfig  # noqa: E402

GOSSIP_PORT, RPC_PORT, IPFS_PORT = 4001, 8545, 5001
DISK_BYTES = 16 * 2**20


class NetnsPeer(PeerProcess):
    """`fedledger peer run` on an institution's machine (`ip netns exec`), with extra environment."""

    def __init__(self, config_path: Path, *extra: str, prefix: list[str], env: dict[str, str]) -> None:
        super().__init__(config_path, *extra)
        self.prefix, self.env = prefix, env
        self.starts = 0

    def start(self) -> "NetnsPeer":
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1", **self.env}
        cmd = [*self.prefix, sys.executable, "-m", "bench.chaos_clock", "peer", "run", "--config",
               str(self.config_path), "--json", *self.extra]
        self.proc = start_process(cmd, log_path=self.log_path, append=True, stdout_pipe=True, env=env, cwd=ROOT)
        threading.Thread(target=self._pump, args=(self.proc,), daemon=True).start()
        self.starts += 1
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class Cluster:
    """Services, federation and peer processes of one chaos run (see the module docstring)."""

    def __init__(self, workdir: Path, topo: Topology, *, rounds: int, params: RoundParams | None = None,
                 disk_peer: int | None = None, pace: float = 0.0) -> None:
        self.workdir, self.topo, self.rounds = Path(workdir), topo, rounds
        self.params = params or LOCAL_ROUND_PARAMS.replace(rule="fedavg", commit_period=40, vote_period=25)
        self.disk_peer, self.pace = disk_peer, pace
        self.chain_ip = topo.ip("chain")
        self.rpc_url = f"http://{self.chain_ip}:{RPC_PORT}"
        self.ipfs_api = f"/ip4/{self.chain_ip}/tcp/{IPFS_PORT}/http"
        self.pids: dict[str, int] = {}
        self.fed: LocalFederation | None = None
        self.peers: list[NetnsPeer] = []
        self.mounted: list[Path] = []
        self.clock_files: list[Path] = []

    # ---- services on the chain machine -------------------------------------------------------------------
    def start_service(self, service: str) -> int:
        """(Re)start anvil or the IPFS node on the chain machine, same port and state as before."""
        base = self.workdir / "chain"
        base.mkdir(parents=True, exist_ok=True)
        extra = (["--port", str(RPC_PORT), "--state", str(base / "anvil-state.json"), "--log", str(base / "anvil.log")]
                 if service == "anvil" else ["--port", str(IPFS_PORT), "--repo", str(base / "ipfs")])
        out = subprocess.run([*self.topo.exec_prefix("chain"), sys.executable, "-m", "bench.chaos_service",
                              service, "--host", self.chain_ip, *extra],
                             capture_output=True, text=True, cwd=ROOT, timeout=180)
        if out.returncode != 0:
            raise RuntimeError(f"{service} did not start on the chain machine: {out.stderr.strip()[-2000:]}")
        self.pids[service] = int(json.loads(out.stdout.strip().splitlines()[-1])["pid"])
        return self.pids[service]

    def kill_service(self, service: str) -> None:
        """kill -9: no state dump, no graceful shutdown."""
        try:
            os.kill(self.pids[service], signal.SIGKILL)
        except ProcessLookupError:
            pass
        for _ in range(100):
            if not pid_alive(self.pids[service]):
                return
            threading.Event().wait(0.1)

    # ---- the federation ----------------------------------------------------------------------------------
    def create(self, peers: int, *, seed: int = 0) -> LocalFederation:
        placeholder = self.topo.host_ip
        fed = create_local_federation(
            self.workdir / "fed", peers, rpc_url=self.rpc_url, ipfs_api=self.ipfs_api, params=self.params,
            partition="iid", seed=seed, gossip_host=placeholder, gossip_ports=[GOSSIP_PORT] * peers, scrypt_n=2**12,
            peer_overrides={"training": {"local_epochs": 1}, "min_round_interval": self.pace})
        addrs = [p.gossip_addr.replace(f"/ip4/{placeholder}/", f"/ip4/{self.topo.ip(f'inst{p.index + 1}')}/")
                 for p in fed.peers]
        for p in fed.peers:
            cfg = PeerConfig.from_toml(p.config_path, listen=addrs[p.index].split("/p2p/")[0],
                                       bootstrap=[a for j, a in enumerate(addrs) if j != p.index])
            cfg.to_toml(p.config_path)
        self.fed = fed
        if self.disk_peer is not None:
            self._mount_tmpfs(fed.peers[self.disk_peer].state_dir / "node")
        return fed

    def _mount_tmpfs(self, where: Path) -> None:
        """Put `where` on a DISK_BYTES tmpfs (before the peer starts: every later mount namespace sees it)."""
        aside = where.with_name(where.name + ".before-tmpfs")
        if where.exists():
            where.rename(aside)
        where.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs", str(where)], check=True,
                       capture_output=True, timeout=30)
        self.mounted.append(where)
        if aside.exists():
            shutil.copytree(aside, where, dirs_exist_ok=True)
            shutil.rmtree(aside)

    def filler(self) -> Path:
        assert self.fed is not None and self.disk_peer is not None
        return self.fed.peers[self.disk_peer].state_dir / "node" / "chaos-filler.bin"

    def fill_disk(self) -> int:
        """Fill the disk peer's tmpfs to the last byte; the bytes written."""
        written, chunk = 0, b"\0" * 65536
        with open(self.filler(), "wb", buffering=0) as fh:
            try:
                while True:
                    written += fh.write(chunk)
            except OSError:
                pass
        try:
            with open(self.filler(), "ab", buffering=0) as fh:   # the last partial chunk
                while fh.write(b"\0"):
                    written += 1
        except OSError:
            pass
        return written

    def free_disk(self) -> None:
        self.filler().unlink(missing_ok=True)

    # ---- peers -------------------------------------------------------------------------------------------
    def start_peers(self) -> list[NetnsPeer]:
        assert self.fed is not None
        clock_dir = self.workdir / "clock"
        clock_dir.mkdir(parents=True, exist_ok=True)
        for p in self.fed.peers:
            clock = clock_dir / f"p{p.index}.offset"
            clock.write_text("0\n")
            self.clock_files.append(clock)
            env = {"CHAOS_CLOCK_FILE": str(clock)}
            peer = NetnsPeer(p.config_path, "--max-rounds", str(self.rounds),
                             prefix=self.topo.exec_prefix(f"inst{p.index + 1}"), env=env)
            self.peers.append(peer.start())
        return self.peers

    def skew(self, index: int, seconds: float) -> None:
        """Move peer `index`'s wall clock by `seconds` (its `bench.chaos_clock` re-reads the file within a second)."""
        tmp = self.clock_files[index].with_suffix(".tmp")
        tmp.write_text(f"{seconds:.1f}\n")
        os.replace(tmp, self.clock_files[index])

    # ---- teardown ----------------------------------------------------------------------------------------
    def close(self) -> None:
        for peer in self.peers:
            peer.kill()
        for service in list(self.pids):
            self.kill_service(service)
        for where in self.mounted:
            subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True, timeout=30)
        self.mounted.clear()
