"""The chaos suite's "machines": one Linux network namespace per institution plus one for the chain/IPFS host.

Same layout as `scripts/multihost.sh` (a bridge, one veth per machine, `chain` = .1, institution i = .1i), plus an
address for the host itself on the bridge (.254), so the harness (deploy, monitor, checks) talks to every machine
without entering a namespace. Faults on the network act on a machine's link:
- `link(name, up=False)`: the host end of its veth goes down — a cut cable (the machine sees NO-CARRIER);
- `degrade(name)`: token-bucket shaping (`tc tbf`: low rate, a short queue whose overflow is dropped) in both
  directions. `tc netem` would be the natural tool, but the sch_netem module is not in every kernel (not in
  this machine's: "Specified qdisc kind is unknown"), so a slow, lossy link is emulated with tbf, which is.
`down()` kills every process left in the namespaces and deletes them and the bridge; it is idempotent.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass, field

TBF = ["tbf", "rate", "32kbit", "burst", "16kbit", "latency", "300ms"]   # ~4 KB/s, 300 ms of queue, then drops


class NetnsUnavailable(RuntimeError):
    """Network namespaces cannot be made here (not root, no iproute2, or not permitted)."""


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=30)


def run_prefix() -> str:
    """Names of this process's namespaces: `flc<pid>`, so a later run can tell a dead run's leftovers."""
    return f"flc{os.getpid()}"


def sweep_stale(institutions: int = 8) -> list[str]:
    """Tear down the namespaces of chaos runs whose process is gone (killed before its own teardown ran)."""
    listed = _ip("netns", "list", check=False).stdout.split()
    owners = {int(m.group(1)) for name in listed if (m := re.match(r"^flc(\d+)-chain$", name))}
    swept = []
    for pid in sorted(owners):
        try:
            os.kill(pid, 0)
            continue            # still running: not ours to touch
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        topo = Topology(f"flc{pid}", "0.0.0", institutions)
        topo.down()
        swept.append(topo.prefix)
    return swept


def probe(prefix: str = "flchaosprobe") -> None:
    """Raise NetnsUnavailable with the reason if namespaces cannot be made here."""
    if os.geteuid() != 0:
        raise NetnsUnavailable("network namespaces need root")
    if shutil.which("ip") is None:
        raise NetnsUnavailable("iproute2 ('ip') is not installed")
    name = f"{prefix}{os.getpid() % 100000}"
    made = _ip("netns", "add", name, check=False)
    if made.returncode != 0:
        raise NetnsUnavailable(f"'ip netns add' is not permitted here: {made.stderr.strip()}")
    _ip("netns", "del", name, check=False)


@dataclass
class Topology:
    """Machines `chain`, `inst1`..`instN` on bridge `<prefix>br`, subnet `<subnet>.0/24`."""

    prefix: str
    subnet: str
    institutions: int
    made: list[str] = field(default_factory=list)

    @property
    def machines(self) -> list[str]:
        return ["chain", *(f"inst{i}" for i in range(1, self.institutions + 1))]

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br"

    @property
    def host_ip(self) -> str:
        return f"{self.subnet}.254"

    def ns(self, machine: str) -> str:
        return f"{self.prefix}-{machine}"

    def ip(self, machine: str) -> str:
        return f"{self.subnet}.1" if machine == "chain" else f"{self.subnet}.{10 + int(machine[4:])}"

    def veth(self, machine: str) -> str:
        return f"{self.prefix}v{self.machines.index(machine)}"

    def exec_prefix(self, machine: str) -> list[str]:
        """Prepend to a command to run it "on" `machine` (`ip netns exec` execs it: same pid)."""
        return ["ip", "netns", "exec", self.ns(machine)]

    def up(self) -> None:
        self.down()
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.host_ip}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for machine in self.machines:
            ns, veth = self.ns(machine), self.veth(machine)
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", ns, "addr", "add", f"{self.ip(machine)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")

    def link(self, machine: str, *, up: bool) -> None:
        _ip("link", "set", self.veth(machine), "up" if up else "down")

    def degrade(self, machine: str, *, on: bool) -> None:
        """Shape both directions of `machine`'s link (its eth0 egress and the bridge side's egress into it)."""
        for where in (["tc", "-n", self.ns(machine)], ["tc"]):
            dev = "eth0" if "-n" in where else self.veth(machine)
            if on:
                subprocess.run([*where, "qdisc", "replace", "dev", dev, "root", *TBF], check=True,
                               capture_output=True, timeout=30)
            else:
                subprocess.run([*where, "qdisc", "del", "dev", dev, "root"], check=False, capture_output=True,
                               timeout=30)

    def pids(self, machine: str) -> list[int]:
        out = _ip("netns", "pids", self.ns(machine), check=False).stdout
        return [int(p) for p in out.split()]

    def down(self) -> None:
        """Kill what still runs in our namespaces, delete them and the bridge (idempotent)."""
        listed = _ip("netns", "list", check=False).stdout
        existing = {line.split()[0] for line in listed.splitlines() if line.strip()}
        for machine in self.machines:
            ns = self.ns(machine)
            if ns not in existing:
                continue
            for pid in self.pids(machine):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            _ip("netns", "del", ns, check=False)
        _ip("link", "del", self.bridge, check=False)
        self.made.clear()

    def leftovers(self) -> list[str]:
        """Namespaces or the bridge of this topology that still exist (empty after `down()`)."""
        listed = _ip("netns", "list", check=False).stdout
        left = [ns for ns in map(self.ns, self.machines) if ns in listed.split()]
        if _ip("link", "show", self.bridge, check=False).returncode == 0:
            left.append(self.bridge)
        return left
