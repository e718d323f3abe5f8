"""Several machines: the institution's CLI pieces (IPFS-only node, peering, `devnet config`, deploy-time checks)
and `scripts/multihost.sh run`, a 3-institution federation across Linux network namespaces."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account
from test_devnet_cli import _services, fedledger  # noqa: F401  (shared CLI runner)

from devnet.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "multihost.sh"
EXAMPLES = ("federation.example.json", "federation.3members.example.json")


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_configs_aggregate_and_fund_100_rounds(name: str) -> None:
    from consensus.feasibility import max_f
    from fedledger.devnet_config_cmd import funding_warning
    from ledger_tools.config import FederationConfig

    config = FederationConfig.load(ROOT / "docs" / name)
    assert config.f <= max_f(config.rule, len(config.members))
    assert funding_warning(config.reward_per_round_wei, config.funding_wei, 100) is None


def test_funding_warning_says_how_many_rounds() -> None:
    from fedledger.devnet_config_cmd import funding_warning

    line = funding_warning(10**18, 10 * 10**18, 100)
    assert line is not None and "\n" not in line
    assert "pays 10 round(s)" in line and "rounds 11 and later pay 0" in line and str(100 * 10**18) in line
    assert funding_warning(0, 0, 100) is None            # no rewards: nothing to warn about
    assert funding_warning(10**18, 10**20, 100) is None


def test_deploy_checks_before_any_network_call(tmp_path: Path) -> None:
    """Both checks run before the RPC is contacted (here: nothing listens there)."""
    data = json.loads((ROOT / "docs" / "federation.3members.example.json").read_text())
    underfunded = tmp_path / "underfunded.json"
    underfunded.write_text(json.dumps({**data, "funding_wei": 5 * 10**18}))
    nowhere = f"http://127.0.0.1:{free_port()}"
    out = fedledger("devnet", "deploy", "--config", str(underfunded), "--rpc", nowhere, cwd=tmp_path)
    assert out.returncode == 3 and "cannot reach" in out.stderr  # 3: a service cannot be reached
    warning = [line for line in out.stderr.splitlines() if line.startswith("warning:")]
    assert len(warning) == 1 and "pays 5 round(s)" in warning[0]
    never = tmp_path / "never.json"
    never.write_text(json.dumps({**data, "rule": "multi_krum"}))
    out = fedledger("devnet", "deploy", "--config", str(never), "--rpc", nowhere, cwd=tmp_path)
    said = " ".join(out.stderr.split())  # the error printer wraps long lines
    assert out.returncode == 2 and "no round could ever aggregate" in said and "cannot reach" not in said


def test_devnet_config_from_peer_init_files(tmp_path: Path) -> None:
    genesis = tmp_path / "genesis.json"
    example = json.loads((ROOT / "docs" / "federation.3members.example.json").read_text())
    genesis.write_text(json.dumps({k: example[k] for k in ("model_spec_hash", "genesis_model_hash",
                                                            "genesis_model_cid", "scale_bits")}))
    members = []
    for i in range(3):
        path = tmp_path / f"inst{i}.json"
        path.write_text(json.dumps({"address": Account.create().address, "enc_key": "0x" + f"{i + 1}" * 64,
                                    "peer_id": "12D3KooWx", "multiaddr": None}) + "\n")
        members += ["--member", str(path)]
    auditor = f"{Account.create().address}:0x{'a' * 64}"
    out_file = tmp_path / "federation.json"
    common = [*members, "--auditor", auditor, "--genesis", str(genesis), "--out", str(out_file)]

    refused = fedledger("devnet", "config", *common, "--rule", "multi_krum", "--f", "1", cwd=tmp_path)
    assert refused.returncode == 2 and "no round could ever aggregate" in " ".join(refused.stderr.split())
    assert not out_file.exists()

    made = fedledger("devnet", "config", *common, "--rule", "trimmed_mean", "--f", "1", "--reward-eth", "1",
                     "--funding-eth", "20", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert "pays 20 round(s)" in made.stderr
    written = json.loads(out_file.read_text())
    assert len(written["members"]) == 3 and written["auditors"][0]["enc_key"] == "0x" + "a" * 64
    assert written["funding_wei"] == 20 * 10**18 and written["rule"] == "trimmed_mean"

    again = fedledger("devnet", "config", *common, cwd=tmp_path)
    assert again.returncode == 1 and "--force" in " ".join(again.stderr.split())


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    dirs = (tmp_path / "a", tmp_path / "b")
    yield dirs
    for state in dirs:
        fedledger("devnet", "down", "--state-dir", str(state), cwd=tmp_path)


def test_ipfs_only_nodes_peer_and_share_blobs(two_nodes: tuple[Path, Path], tmp_path: Path) -> None:
    """An institution's IPFS-only node, peered with another: a blob added on one is read through the other."""
    from ledger_tools.blobstore import IpfsBlobStore

    a, b = two_nodes
    up_a = fedledger("devnet", "up", "--ipfs-only", "--ipfs-port", "0", "--state-dir", str(a), "-d", "--json",
                     cwd=tmp_path)
    assert up_a.returncode == 0, up_a.stderr
    info_a = json.loads(up_a.stdout)
    assert info_a["rpc"] is None and "chain" not in info_a["pids"] and "/p2p/" in info_a["ipfs_swarm"]
    up_b = fedledger("devnet", "up", "--ipfs-only", "--ipfs-port", "0", "--state-dir", str(b), "-d", "--json",
                     cwd=tmp_path)
    assert up_b.returncode == 0, up_b.stderr
    info_b = json.loads(up_b.stdout)

    bad = fedledger("devnet", "connect", "/ip4/0.0.0.0/tcp/1", "--state-dir", str(b), cwd=tmp_path)
    assert bad.returncode == 2 and "not an IPFS swarm multiaddr" in " ".join(bad.stderr.split())
    connected = fedledger("devnet", "connect", info_a["ipfs_swarm"], "--state-dir", str(b), cwd=tmp_path)
    assert connected.returncode == 0 and "connected" in connected.stdout, connected.stdout + connected.stderr

    blob = os.urandom(3000)
    cid = IpfsBlobStore(info_a["ipfs_api"]).add(blob)
    assert IpfsBlobStore(info_b["ipfs_api"], timeout=20).cat(cid) == blob   # bitswap from the peered node
    status = fedledger("devnet", "status", "--state-dir", str(b), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stdout + status.stderr
    assert "1/1 peering connected" in json.loads(status.stdout)["detail"]["ipfs"]
    down = fedledger("devnet", "down", "--state-dir", str(b), cwd=tmp_path)
    assert down.returncode == 0 and "ipfs: stopped" in down.stdout and "chain" not in down.stdout


# --- the whole federation across network namespaces ------------------------------------------------------------

def _namespaces_unavailable() -> str | None:
    if shutil.which("ip") is None:
        return "iproute2 ('ip') is not installed"
    probe = subprocess.run(["bash", str(SCRIPT), "probe"], capture_output=True, text=True, timeout=30,
                           env={**os.environ, "MH_PREFIX": f"flp{os.getpid() % 100000}"})
    return None if probe.returncode == 0 else (probe.stdout + probe.stderr).strip() or "probe failed"


@pytest.fixture
def multihost_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    why = _namespaces_unavailable()
    if why:
        pytest.skip(f"network namespaces not available here: {why}")
    env = {**os.environ, "MH_PREFIX": f"flt{os.getpid() % 100000}", "MH_SUBNET": "10.232.0",
           "MH_DIR": str(tmp_path / "multihost"), "MH_ROUNDS": "2", "MH_TIMEOUT": "420", "COLUMNS": "200"}
    yield env
    subprocess.run(["bash", str(SCRIPT), "down"], env=env, capture_output=True, timeout=120)  # whatever happened


def test_multihost_run_three_institutions(multihost_env: dict[str, str]) -> None:
    proc = subprocess.Popen(["bash", str(SCRIPT), "run"], env=multihost_env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=560)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)   # the script's trap tears down; the fixture makes sure
        output, _ = proc.communicate(timeout=120)
        pytest.fail("multihost.sh run did not finish in 560 s:\n" + output[-4000:])
    assert proc.returncode == 0, output[-6000:]
    assert "ok: 3 peers, rounds 1..2 finalized, updates by gossip, audit verified" in output
    prefix = multihost_env["MH_PREFIX"]
    assert prefix not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"{prefix}-br" not in subprocess.run(["ip", "link", "show"], capture_output=True, text=True).stdout
