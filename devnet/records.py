"""What `devnet up` records about its services (services.json in the state dir), and how to read it back.

A record outlives the process it describes: after a crash it still says where the service ran (host, ports,
state file, repo), which is what `devnet up` needs to bring the dead service back exactly there.
"""
from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from devnet.errors import DevnetError

SERVICES_FILE = "services.json"


@dataclass
class ServiceRecord:
    """One service as recorded in services.json."""

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
    #: what this `devnet up` did to each service ("started", "restarted", "running"); not persisted
    actions: dict[str, str] = field(default_factory=dict, compare=False)

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
    alive: bool      # running and answering
    detail: str      # block number for the chain, swarm address for IPFS, or why it is not answering
    state: str = "up"  # "up" | "not answering" (pid alive, API silent) | "down" (pid gone or a zombie)
    port: int = 0


def services_path(state_dir: Path) -> Path:
    return Path(state_dir) / SERVICES_FILE


def read_services(state_dir: Path) -> DevnetServices | None:
    """The services recorded in `state_dir`, or None when no devnet was started there (or it was brought down)."""
    path = services_path(state_dir)
    if not path.exists():
        return None
    try:
        return DevnetServices.from_json(path.read_text())
    except (ValueError, KeyError, TypeError) as exc:
        raise DevnetError(f"{path} is corrupt ({exc})", hint=f"stop leftover processes, then delete {path}") from exc


def write_services(services: DevnetServices) -> None:
    """Replace services.json atomically (a reader never sees half a record)."""
    path = services_path(services.state_dir)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(services.to_json())
    os.replace(tmp, path)
