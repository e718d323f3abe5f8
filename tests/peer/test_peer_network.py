"""`fedledger peer run` on the network side, as an operator runs it: --listen/--announce, the peer id that
`peer id` prints, the refusal of an undialable announce address, and the one warning of an unfunded peer."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from devnet.anvil import set_balance
from helpers.peer_proc import FEDLEDGER, PeerProcess

pytestmark = pytest.mark.timeout(240)
ROOT = Path(__file__).resolve().parents[2]


_ENV = {**os.environ, "COLUMNS": "200", "FEDLEDGER_PASSWORD": "x"}


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FEDLEDGER, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=_ENV)


UNDIALABLE = [
    (["--listen", "/ip4/0.0.0.0/tcp/4001", "--announce", "/ip4/0.0.0.0/tcp/4001"], "is not dialable"),
    (["--listen", "/ip4/0.0.0.0/tcp/4001"], "binds every interface"),
]


def test_undialable_announce_is_refused_in_one_line(tmp_path: Path) -> None:
    """Both refusals as real processes, side by side (each mostly waits for its imports)."""
    for i in range(len(UNDIALABLE)):
        (tmp_path / str(i)).mkdir()
    procs = [(subprocess.Popen([*FEDLEDGER, "peer", "run", "--state-dir", str(tmp_path / str(i)), "--contract",
                                "0x" + "11" * 20, *flags], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=_ENV), message)
             for i, (flags, message) in enumerate(UNDIALABLE)]
    for proc, message in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 2, stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 2 and lines[0].startswith("error: ") and message in lines[0], stderr
        assert lines[1].startswith("hint: ") and "--announce /ip4/" in lines[1]


def test_wildcard_listen_announced_peer_id_and_unfunded_peer(local_federation, peer_anvil) -> None:
    fed = local_federation(2)
    p0, p1 = fed.peers
    announce = f"/ip4/127.0.0.1/tcp/{p0.gossip_port}"
    set_balance(peer_anvil.rpc_url, p1.address, 0)
    procs = [PeerProcess(p0.config_path, "--listen", f"/ip4/0.0.0.0/tcp/{p0.gossip_port}", "--announce", announce),
             PeerProcess(p1.config_path)]
    try:
        # `peer id` only reads the state dir: it runs while the peers start up
        shown_proc = subprocess.Popen([*FEDLEDGER, "peer", "id", "--state-dir", str(p0.state_dir), "--announce",
                                       announce, "--json"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, env=_ENV)
        for proc in procs:
            proc.start()
        stdout, stderr = shown_proc.communicate(timeout=120)
        assert shown_proc.returncode == 0, stderr
        multiaddr = json.loads(stdout)["multiaddr"]
        assert multiaddr == p0.gossip_addr  # what the other peer was told to dial
        listening = procs[0].wait_for(lambda e: e["phase"] == "gossip" and e["event"] == "listening", 90)
        assert listening["message"].startswith(multiaddr + " ")
        warning = procs[1].wait_for(lambda e: e["phase"] == "funds", 90)
        assert warning["event"] == "insufficient" and warning["level"] == "warning"
        assert p1.address in warning["message"] and "devnet fund" in warning["message"]

        funded = _cli("devnet", "fund", p1.address, "--eth", "1", "--rpc", peer_anvil.rpc_url)
        assert funded.returncode == 0, funded.stderr
        procs[1].wait_for(lambda e: e["phase"] == "funds" and e["event"] == "ok", 30)
        for proc in procs:  # p1 dials p0's announced address; p0 listens on every interface
            proc.wait_for(lambda e: e["phase"] == "gossip" and e.get("peers") == 1, 60)
        assert len([e for e in procs[1].events if e["phase"] == "funds" and e["event"] == "insufficient"]) == 1
    finally:
        for proc in procs:
            proc.kill()
