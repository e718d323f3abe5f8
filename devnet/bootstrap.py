"""Create a whole local federation in one call: peer identities, genesis model on IPFS, deployed ledger owned by
its governor (`devnet.deploy.deploy_governed_federation`: members admit and remove by vote, nobody else can).

Used by the tests, `fedledger demo` and the simulator. On a real deployment each institution runs
`fedledger peer init` itself and hands its public part to the federation's admin; here one process plays
every role on loopback, so it can also fund each peer's account from an anvil dev key (peers pay gas).

Layout under `root_dir`::

    password.txt                      the keystore password of every local peer (0600)
    federation.json                   the FederationConfig that was deployed
    federation.deployed.json          contract + governor address, deploy block, chain id, peers, gossip addresses
    peers/p<i>/                       peer i's state dir: keystore, X25519 key, node/, peer.toml
    auditors/a<j>/                    auditor identities (they can unseal every update)
"""
from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ledger_tools.chain.governance import GovParams
from ledger_tools.config import RoundParams
from peer.config import PeerConfig

DEFAULT_PASSWORD = "fedledger-local"
#: Round rules of a local federation unless a caller says otherwise: minute-long phases, 1 ETH a round.
LOCAL_ROUND_PARAMS = RoundParams(commit_period=60, vote_period=60, reward_per_round_wei=10**18)
#: Governance of a local federation: proposals vote for a minute (the contract's minimum) and execute at once,
#: a leaving member waits a minute; stake and slashing as on a real deployment.
LOCAL_GOV_PARAMS = GovParams(voting_period=60, execution_delay=0, execution_window=86400, withdraw_delay=60)


@dataclass(frozen=True)
class LocalPeer:
    index: int
    name: str
    address: str
    enc_public_key: str            # 0x + 64 hex
    state_dir: Path
    config_path: Path
    gossip_port: int
    gossip_addr: str               # /ip4/127.0.0.1/tcp/PORT/p2p/ID


@dataclass(frozen=True)
class LocalAuditor:
    address: str
    enc_public_key: str
    state_dir: Path


@dataclass
class LocalFederation:
    root_dir: Path
    contract: str
    deploy_block: int
    chain_id: int
    rpc_url: str
    ipfs_api: str
    task: str
    password_file: Path
    genesis_cid: str
    genesis_hash: str
    peers: list[LocalPeer] = field(default_factory=list)
    auditors: list[LocalAuditor] = field(default_factory=list)
    federation_config: Path | None = None
    governor: str = ""             # the FederationGovernor that owns the ledger ("" in files written before it)

    def peer_config(self, index: int, **overrides: Any) -> PeerConfig:
        """Peer `index`'s config (as written to its peer.toml), with optional overrides."""
        return PeerConfig.from_toml(self.peers[index].config_path, **overrides)

    def to_json(self) -> str:
        doc = asdict(self)
        return json.dumps(doc, indent=2, default=str)

    @classmethod
    def load(cls, root_dir: str | os.PathLike) -> "LocalFederation":
        doc = json.loads((Path(root_dir) / "federation.deployed.json").read_text())
        peers = [LocalPeer(**{**p, "state_dir": Path(p["state_dir"]), "config_path": Path(p["config_path"])})
                 for p in doc.pop("peers")]
        auditors = [LocalAuditor(**{**a, "state_dir": Path(a["state_dir"])}) for a in doc.pop("auditors")]
        doc["root_dir"], doc["password_file"] = Path(doc["root_dir"]), Path(doc["password_file"])
        if doc.get("federation_config"):
            doc["federation_config"] = Path(doc["federation_config"])
        return cls(peers=peers, auditors=auditors, **doc)


def _partition_for(partition: str, n: int, i: int, alpha: float, seed: int, task: str) -> dict[str, Any]:
    if task.startswith("csv:"):
        # a CSV federation: every local peer reads the task's table (an institution overrides it with --data)
        path, _, label = task[4:].rpartition(":")
        return {"partition": "csv", "csv_path": path, "label": label}
    if partition in ("iid", "dirichlet"):
        return {"partition": partition, "alpha": alpha, "num_partitions": n, "partition_index": i, "seed": seed}
    return {"partition": partition}


def create_local_federation(
    root_dir: str | os.PathLike,
    n_peers: int,
    *,
    rpc_url: str,
    ipfs_api: str,
    task: str = "digits",
    params: RoundParams = LOCAL_ROUND_PARAMS,
    gov_params: GovParams = LOCAL_GOV_PARAMS,
    funding_wei: int | None = None,
    password: str = DEFAULT_PASSWORD,
    auditors: int = 1,
    partition: str = "dirichlet",
    alpha: float = 0.5,
    seed: int = 0,
    deployer_key: str | None = None,
    peer_funding_wei: int = 10 * 10**18,
    gossip: bool = True,
    gossip_host: str = "127.0.0.1",
    gossip_ports: Sequence[int] | None = None,
    peer_overrides: dict[str, Any] | None = None,
    scrypt_n: int | None = 2**14,
    names: Sequence[str] | None = None,
) -> LocalFederation:
    """Create `n_peers` peer identities (+ `auditors` auditor identities) under `root_dir`, put the genesis
    model of `task` on IPFS, deploy a funded FederationLedger with them as members, owned by a
    FederationGovernor with `gov_params` (the deployer keeps no power), and return where everything is.
    Each peer gets a `peer.toml` (data shard i of a `partition` split of the task's train
    data, gossip port + bootstrap to every other peer) ready for `fedledger peer run --config`.

    `params` are the round rules (`LOCAL_ROUND_PARAMS.replace(rule=..., f=...)`); `funding_wei` defaults to 100
    rounds of rewards. `deployer_key` defaults to anvil's dev account 0, which
    also funds every peer with `peer_funding_wei` for gas. `scrypt_n` trades keystore hardness for speed
    (tests and demos); None = the identity module's default.
    """
    from web3 import Web3

    import consensus
    from devnet.anvil import dev_accounts
    from devnet.deploy import deploy_governed_federation
    from devnet.ports import free_port
    from ledger_tools.blobstore import IpfsBlobStore
    from ledger_tools.config import FederationConfig
    from peer.crypto.identity import PeerIdentity
    from peer.learning.tasks import get_task
    from peer.loop.node import gossip_peer_id, gossip_seed
    from peer.loop.state import atomic_write_bytes

    if n_peers < 1:
        raise ValueError("a federation needs at least one peer")
    root = Path(root_dir).resolve()
    root.mkdir(parents=True, exist_ok=True)
    password_file = root / "password.txt"
    atomic_write_bytes(password_file, password.encode())
    os.chmod(password_file, 0o600)
    id_kwargs = {} if scrypt_n is None else {"scrypt_n": scrypt_n}

    # identities
    identities = [PeerIdentity.create(root / "peers" / f"p{i}", password, **id_kwargs) for i in range(n_peers)]
    auditor_ids = [PeerIdentity.create(root / "auditors" / f"a{j}", password, **id_kwargs) for j in range(auditors)]

    # genesis model on IPFS
    the_task = get_task(task)
    genesis = consensus.encode(the_task.genesis_state(), scale_bits=params.scale_bits)
    store = IpfsBlobStore(ipfs_api)
    genesis_cid = store.add(genesis)
    genesis_hash = consensus.update_hash(genesis)

    config = FederationConfig(
        members=[{"address": p.address, "enc_key": "0x" + p.enc_public_key.hex()} for p in identities],
        auditors=[{"address": a.address, "enc_key": "0x" + a.enc_public_key.hex()} for a in auditor_ids],
        **params.model_dump(),
        funding_wei=params.reward_per_round_wei * 100 if funding_wei is None else funding_wei,
        model_spec_hash="0x" + the_task.model_spec().spec_hash().hex(),
        genesis_model_hash="0x" + genesis_hash.hex(), genesis_model_cid=genesis_cid,
    )
    config_path = root / "federation.json"
    config.dump(config_path)
    key = deployer_key or dev_accounts()[0].private_key
    deployed = deploy_governed_federation(rpc_url, config, key, gov_params)
    ledger = deployed.ledger

    # gas money for every peer (and auditors: they may want to send transactions too)
    w3 = Web3(Web3.HTTPProvider(rpc_url))
    funder = w3.eth.account.from_key(key)
    nonce = w3.eth.get_transaction_count(funder.address, "pending")
    chain_id = int(w3.eth.chain_id)
    hashes = []
    for ident in [*identities, *auditor_ids]:
        tx = {"to": ident.address, "value": peer_funding_wei, "gas": 21000, "nonce": nonce, "chainId": chain_id,
              "maxFeePerGas": w3.to_wei(10, "gwei"), "maxPriorityFeePerGas": 1}
        hashes.append(w3.eth.send_raw_transaction(funder.sign_transaction(tx).raw_transaction))
        nonce += 1
    for h in hashes:
        w3.eth.wait_for_transaction_receipt(h, timeout=60, poll_latency=0.1)

    # gossip addresses: a stable libp2p key per peer, so every peer can bootstrap to every other
    ports = list(gossip_ports) if gossip_ports is not None else [free_port(gossip_host) for _ in range(n_peers)]
    addrs = []
    for i in range(len(identities)):
        seed_bytes = gossip_seed(root / "peers" / f"p{i}")
        addrs.append(f"/ip4/{gossip_host}/tcp/{ports[i]}/p2p/{gossip_peer_id(seed_bytes)}")

    peers = []
    for i, ident in enumerate(identities):
        state_dir = root / "peers" / f"p{i}"
        name = names[i] if names is not None else f"peer{i}"
        cfg = PeerConfig.model_validate(
            {
                "state_dir": state_dir,
                "contract": ledger.address,
                "name": name,
                "rpc_url": rpc_url,
                "ipfs_api": ipfs_api,
                "password_file": password_file,
                "gossip": gossip,
                "listen": f"/ip4/{gossip_host}/tcp/{ports[i]}",
                "bootstrap": [a for j, a in enumerate(addrs) if j != i],
                "task": task,
                "data": _partition_for(partition, n_peers, i, alpha, seed, task),
                "from_block": int(ledger.deploy_block),
                **(peer_overrides or {}),
            }
        )
        config_file = cfg.to_toml(state_dir / "peer.toml")
        peers.append(LocalPeer(i, name, ident.address, "0x" + ident.enc_public_key.hex(), state_dir, config_file,
                               ports[i], addrs[i]))

    fed = LocalFederation(
        root_dir=root, contract=ledger.address, deploy_block=int(ledger.deploy_block), chain_id=chain_id,
        rpc_url=rpc_url, ipfs_api=ipfs_api, task=task, password_file=password_file, genesis_cid=genesis_cid,
        genesis_hash="0x" + genesis_hash.hex(), peers=peers,
        auditors=[LocalAuditor(a.address, "0x" + a.enc_public_key.hex(), root / "auditors" / f"a{j}")
                  for j, a in enumerate(auditor_ids)],
        federation_config=config_path, governor=deployed.governor.address,
    )
    atomic_write_bytes(root / "federation.deployed.json", fed.to_json().encode())
    return fed
