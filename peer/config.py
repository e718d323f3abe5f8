"""A peer node's configuration: where its keys and state live, which endpoints it talks to, what it trains.

Every endpoint is configuration (chain RPC, IPFS API, gossip addresses): nothing assumes localhost beyond
the defaults. A config is read from a TOML file (`PeerConfig.from_toml`) and/or from CLI flags; the
password is never stored in it (a `password_file` path, or `$FEDLEDGER_PASSWORD`).

Example `peer.toml`::

    state_dir = ".fedledger/peers/p0"
    rpc_url = "http://127.0.0.1:8545"
    contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    ipfs_api = "http://127.0.0.1:5001"
    listen = "/ip4/0.0.0.0/tcp/4101"           # what the libp2p host binds
    announce = "/ip4/192.0.2.10/tcp/4101"      # what the other peers dial (never 0.0.0.0)
    bootstrap = ["/ip4/127.0.0.1/tcp/4100/p2p/16Uiu2..."]   # optional: members' announcements are dialled too
    task = "digits"
    max_rounds = 10                            # stop after round 10 settled
    min_round_interval = 60                    # commit no earlier than 60 s after a round opened
    confirmations = 0                          # blocks on top of a tx before it counts; use more on real chains

    [data]
    partition = "dirichlet"
    alpha = 0.5
    num_partitions = 3
    partition_index = 0
    seed = 0

    [training]
    algorithm = "fedavg"
    local_epochs = 2
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from peer.net.gossip_addr import DEFAULT_LISTEN, check_announce, check_bootstrap, check_listen, check_pair

CONFIG_FILE = "peer.toml"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataConfig(_Strict):
    """Which part of the task's training data this peer holds.

    `full` = the whole train split; `iid` / `dirichlet` = shard `partition_index` of `num_partitions`
    (experiments, demo); `csv` = the institution's own table (`csv_path`, `label`).
    """

    partition: Literal["full", "iid", "dirichlet", "csv"] = "full"
    alpha: float = Field(0.5, gt=0)
    num_partitions: int = Field(1, ge=1)
    partition_index: int = Field(0, ge=0)
    seed: int = 0
    csv_path: Path | None = None
    label: str | None = None

    @model_validator(mode="after")
    def _check(self) -> "DataConfig":
        if self.partition in ("iid", "dirichlet") and self.partition_index >= self.num_partitions:
            raise ValueError(
                f"partition_index {self.partition_index} must be < num_partitions {self.num_partitions}"
            )
        if self.partition == "csv" and (self.csv_path is None or not self.label):
            raise ValueError("partition 'csv' needs csv_path and label")
        return self


class TrainingConfig(_Strict):
    """Local objective and its hyper-parameters (FedAvg = plain SGD; FedProx adds mu/2·‖w − M‖²)."""

    algorithm: Literal["fedavg", "fedprox"] = "fedavg"
    local_epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.1, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)
    mu: float = Field(0.01, ge=0)
    seed: int = 0


class PrivacyConfig(_Strict):
    """Optional DP-SGD (per-sample clipping + Gaussian noise); ε is accounted and committed on chain."""

    enabled: bool = False
    clip_norm: float = Field(1.0, gt=0)
    noise_multiplier: float = Field(1.0, ge=0)
    delta: float = Field(1e-5, gt=0, lt=1)


class AdversaryConfig(_Strict):
    """Opt-in Byzantine behaviour for experiments (never the default); see `peer.byzantine.adversary`."""

    attack: str | None = None
    params: dict[str, float] = Field(default_factory=dict)
    seed: int = 0


class PeerConfig(_Strict):
    """Everything `fedledger peer run` needs."""

    state_dir: Path
    contract: str
    name: str | None = None                        # label in logs (default: the short address)
    rpc_url: str = "http://127.0.0.1:8545"
    ipfs_api: str = "http://127.0.0.1:5001"
    from_block: int = Field(0, ge=0)               # the ledger's deploy block (event queries start there)
    password_file: Path | None = None

    gossip: bool = True
    listen: str = DEFAULT_LISTEN                 # libp2p bind multiaddr; may be /ip4/0.0.0.0/tcp/PORT
    announce: str | None = None                  # what others dial; default: listen, if it is not a wildcard
    bootstrap: list[str] = Field(default_factory=list)
    gossip_wait: float = Field(3.0, ge=0)         # how long to wait for gossip copies before IPFS

    task: str = "digits"
    data: DataConfig = Field(default_factory=DataConfig)
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    adversary: AdversaryConfig = Field(default_factory=AdversaryConfig)

    max_rounds: int | None = Field(None, ge=1)     # stop (exit 0) once round N is settled
    min_round_interval: float = Field(0.0, ge=0)   # s after a round opened (chain time) before committing in it
    poll_interval: float = Field(0.5, gt=0)
    commit_margin: float = Field(1.0, ge=0)        # don't start a commit tx closer than this to the deadline
    # blocks on top of a commit/vote before it counts as done (peer.loop.reconcile): 0 suits anvil and local
    # devnets; use more on real chains (e.g. 2-3 on an L2, 12+ on a PoW-style chain), where reorgs drop blocks
    confirmations: int = Field(0, ge=0, le=1000)
    evaluate: bool = True                          # accuracy of each global model on the task's test split

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        return check_listen(value)

    @field_validator("announce")
    @classmethod
    def _announce(cls, value: str | None) -> str | None:
        return None if value is None else check_announce(value)

    @field_validator("rpc_url")
    @classmethod
    def _rpc_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:  # web3 HTTPProvider
            raise ValueError(f"rpc_url {value!r} is not an http(s) URL, e.g. http://127.0.0.1:8545")
        return value

    @field_validator("bootstrap")
    @classmethod
    def _bootstrap(cls, value: list[str]) -> list[str]:
        return [check_bootstrap(address) for address in value]

    @model_validator(mode="after")
    def _dialable(self) -> "PeerConfig":
        if self.gossip:
            check_pair(self.listen, self.announce)
        return self

    @field_validator("contract")
    @classmethod
    def _address(cls, value: str) -> str:
        from eth_utils import is_hex_address, to_checksum_address

        if not is_hex_address(value):
            raise ValueError(f"contract {value!r} is not an Ethereum address")
        return to_checksum_address(value)

    @classmethod
    def from_toml(cls, path: str | os.PathLike, **overrides: Any) -> "PeerConfig":
        """Read a TOML file; relative paths in it are taken relative to the file's folder."""
        path = Path(path)
        with path.open("rb") as fh:
            raw = tomllib.load(fh)
        base = path.parent
        for key in ("state_dir", "password_file"):  # a non-string is left for validation to name
            if isinstance(raw.get(key), str) and not Path(raw[key]).is_absolute():
                raw[key] = str(base / raw[key])
        data = raw.get("data") if isinstance(raw.get("data"), dict) else {}
        if isinstance(data.get("csv_path"), str) and not Path(data["csv_path"]).is_absolute():
            data["csv_path"] = str(base / data["csv_path"])
        return cls.model_validate(_merge(raw, overrides))

    def to_toml(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        doc = self.model_dump(mode="json", exclude_none=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(tomli_w.dumps(doc))
        os.replace(tmp, path)
        return path

    def with_overrides(self, **overrides: Any) -> "PeerConfig":
        return type(self).model_validate(_merge(self.model_dump(), overrides))


def _merge(base: dict, overrides: dict) -> dict:
    """Nested dict merge; `None` overrides are ignored (an unset CLI flag keeps the file's value)."""
    out = dict(base)
    for key, value in overrides.items():
        if value is None:
            continue
        if isinstance(value, dict):
            merged = _merge(out[key] if isinstance(out.get(key), dict) else {}, value)
            if merged or key in out:
                out[key] = merged
        else:
            out[key] = value
    return out
