"""The chaos suite's faults: a seeded schedule, and how each fault is injected into and lifted from a cluster.

One fault at a time, each at the start of a chosen round (or right after that round's first commit is mined:
the moment where a chain crash loses a just-mined transaction), held for a seeded duration, then lifted:

    peer_kill      kill -9 the peer's process group; restart it            (target: a peer)
    chain_kill     kill -9 anvil; restart it on the same port from its state file (dumped every second)
    ipfs_kill      kill -9 the IPFS node; restart it on the same port and repo
    link_down      the peer's machine loses its network link (veth down); link back up
    link_degraded  the peer's link shaped to 32 kbit/s with a 300 ms queue (drops); shaping removed
    disk_full      the peer's node directory (a 16 MB tmpfs) filled to the last byte; filler deleted
    clock_skew     the peer's wall clock moved by ±5..15 s; moved back

The same seed gives the same schedule (kinds, rounds, targets, triggers, delays, durations).
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass, field
from typing import Any

PEER_KINDS = ("peer_kill", "link_down", "link_degraded", "disk_full", "clock_skew")
SERVICE_KINDS = ("chain_kill", "ipfs_kill")
FULL_SCHEDULE = ("peer_kill", "peer_kill", "chain_kill", "chain_kill", "ipfs_kill", "link_down", "link_degraded",
                 "disk_full", "clock_skew")
DURATION = {"peer_kill": (1, 5), "chain_kill": (1, 4), "ipfs_kill": (2, 8), "link_down": (15, 30),
            "link_degraded": (25, 45), "disk_full": (15, 30), "clock_skew": (30, 60)}


@dataclass
class Fault:
    kind: str
    round: int                     # injected once this round is open (or later, if an earlier fault ran long)
    target: int | None             # peer index for PEER_KINDS
    trigger: str                   # "open" | "first_commit"
    delay: float                   # s after the trigger
    duration: float                # s the fault is held before it is lifted
    magnitude: float = 0.0         # clock_skew: seconds
    result: dict[str, Any] = field(default_factory=dict)

    def label(self) -> str:
        who = f" peer{self.target}" if self.target is not None else ""
        extra = f" {self.magnitude:+.0f}s" if self.kind == "clock_skew" else ""
        return f"{self.kind}{who}{extra}"

    def to_json(self) -> dict[str, Any]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def make_schedule(seed: int, rounds: int, peers: int, kinds: tuple[str, ...] = FULL_SCHEDULE,
                  first_round: int = 2, duration_scale: float = 1.0) -> list[Fault]:
    """A seeded schedule of `kinds` spread over rounds first_round..rounds-2 (the last round stays clean).
    `duration_scale` shortens the holds."""
    rng = random.Random(seed)
    order = list(kinds)
    rng.shuffle(order)
    pool = list(range(first_round, max(rounds - 1, first_round + 1)))
    slots = sorted(rng.sample(pool, len(order)) if len(order) <= len(pool) else rng.choices(pool, k=len(order)))
    disk_peer = rng.randrange(peers)
    faults: list[Fault] = []
    for kind, r in zip(order, slots):
        target = disk_peer if kind == "disk_full" else (rng.randrange(peers) if kind in PEER_KINDS else None)
        trigger = rng.choice(("open", "first_commit"))
        if kind == "chain_kill" and not any(f.kind == "chain_kill" and f.trigger == "first_commit" for f in faults):
            trigger = "first_commit"   # at least one chain crash within a second of a mined commit
        delay = rng.uniform(0.2, 0.8) if trigger == "first_commit" and kind == "chain_kill" else rng.uniform(0, 6)
        lo, hi = DURATION[kind]
        magnitude = rng.choice((-1, 1)) * rng.uniform(5, 15) if kind == "clock_skew" else 0.0
        faults.append(Fault(kind, r, target, trigger, delay, rng.uniform(lo, hi) * duration_scale, magnitude))
    return faults


def disk_peer_of(faults: list[Fault]) -> int | None:
    return next((f.target for f in faults if f.kind == "disk_full"), None)


def inject(fault: Fault, cluster: Any, held: set[int]) -> None:
    """Start `fault` on `cluster` (a bench.chaos_cluster.Cluster). Peers in `held` are not restarted by the
    supervisor while the fault lasts."""
    t = fault.target
    if fault.kind == "peer_kill":
        held.add(t)
        cluster.peers[t].kill()
    elif fault.kind == "chain_kill":
        cluster.kill_service("anvil")
    elif fault.kind == "ipfs_kill":
        cluster.kill_service("ipfs")
    elif fault.kind == "link_down":
        cluster.topo.link(f"inst{t + 1}", up=False)
    elif fault.kind == "link_degraded":
        cluster.topo.degrade(f"inst{t + 1}", on=True)
    elif fault.kind == "disk_full":
        held.add(t)
        fault.result["filled_bytes"] = cluster.fill_disk()
    elif fault.kind == "clock_skew":
        cluster.skew(t, fault.magnitude)
    else:
        raise ValueError(f"unknown fault kind {fault.kind!r}")


def lift(fault: Fault, cluster: Any, held: set[int]) -> None:
    """End `fault`: restart what was killed, restore the link, the disk, the clock."""
    t = fault.target
    if fault.kind == "peer_kill":
        cluster.peers[t].start()
        held.discard(t)
    elif fault.kind == "chain_kill":
        cluster.start_service("anvil")
    elif fault.kind == "ipfs_kill":
        cluster.start_service("ipfs")
    elif fault.kind == "link_down":
        cluster.topo.link(f"inst{t + 1}", up=True)
    elif fault.kind == "link_degraded":
        cluster.topo.degrade(f"inst{t + 1}", on=False)
    elif fault.kind == "disk_full":
        cluster.free_disk()
        fault.result["peer_exited"] = not cluster.peers[t].running()
        held.discard(t)        # the supervisor restarts it if the full disk stopped it
    elif fault.kind == "clock_skew":
        cluster.skew(t, 0.0)
