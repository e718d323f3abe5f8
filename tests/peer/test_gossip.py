"""GossipSub between three separate OS processes on loopback (tests/helpers/gossip_peer_main.py), plus in-process
checks.

The three-process network is module-scoped (starting a process that imports libp2p takes seconds); the
tests run in file order and the last one stops the peers.
"""
from __future__ import annotations

import hashlib
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account

from peer.net.admission import EnvelopeValidator
from peer.net.envelope import Envelope
from peer.net.gossip import GossipError, GossipNode

ROOT = Path(__file__).resolve().parents[2]
PEER_MAIN = Path(__file__).resolve().parents[1] / "helpers" / "gossip_peer_main.py"
N = 3
BLOB_SIZE = 1_500_000
pytestmark = pytest.mark.timeout(120)


class PeerProcess:
    """A subprocess speaking one JSON request/reply per line."""

    def __init__(self, index: int, log_dir: Path) -> None:
        self.index = index
        self.stderr_path = log_dir / f"gossip-peer-{index}.stderr"
        self.proc = subprocess.Popen(
            # the tests below publish many envelopes per sender and round; the cap itself is tested in-process
            [sys.executable, str(PEER_MAIN), "--index", str(index), "--members", str(N),
             "--max-per-sender-round", "32"],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr_path.open("wb"),
            env={**os.environ, "PYTHONPATH": str(ROOT)}, text=True, bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(None)

    def read(self, timeout: float) -> dict:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"peer {self.index}: no reply within {timeout} s; stderr:\n{self.stderr()}") from None
        if line is None:
            raise AssertionError(f"peer {self.index} exited ({self.proc.poll()}); stderr:\n{self.stderr()}")
        reply = json.loads(line)
        if not reply["ok"]:
            raise AssertionError(f"peer {self.index}: {reply['error']}\n{reply.get('trace', '')}")
        return reply

    def send(self, cmd: str, **kw) -> None:
        self.proc.stdin.write(json.dumps({"cmd": cmd, **kw}) + "\n")  # type: ignore[union-attr]
        self.proc.stdin.flush()  # type: ignore[union-attr]

    def request(self, cmd: str, **kw) -> dict:
        """Send a command; wait for its reply a little longer than the command's own ``timeout``."""
        self.send(cmd, **kw)
        return self.read(kw.get("timeout", 15.0) + 15.0)

    def stderr(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture(scope="module")
def peers(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("gossip")
    procs = [PeerProcess(i, log_dir) for i in range(N)]
    try:
        for p in procs:
            p.read(timeout=60)  # spawned (imports done)
        addrs = [p.request("start")["multiaddr"] for p in procs]
        # full mesh: each dials the ones after it
        for i, p in enumerate(procs):
            if addrs[i + 1 :]:
                p.request("connect", addrs=addrs[i + 1 :], timeout=15.0)
        for p in procs:
            p.request("wait_peers", n=N - 1, timeout=15.0)
        yield procs
    finally:
        for p in procs:
            p.kill()


def _publish_all(peers, round_: int, blob_size: int) -> list[dict]:
    for p in peers:
        p.send("publish", round=round_, blob_size=blob_size)
    return [p.read(timeout=30) for p in peers]


def test_every_node_receives_every_envelope_and_blob(peers):
    published = _publish_all(peers, 1, BLOB_SIZE)
    assert all(item["chunks"] == 0 for item in published)  # 1.5 MB: over one chunk, so the bulk stream path
    for p in peers:
        p.send("expect", round=1, items=published, timeout=30.0)
    for p in peers:
        p.read(timeout=40)
    for p in peers:
        stats = p.request("stats")["stats"]
        assert stats["received"] == N - 1, stats  # one envelope from each other peer; blobs came by stream
        assert stats["blobs_completed"] == N and stats["blobs_failed"] == 0, stats


@pytest.mark.parametrize(
    "attack, counter",
    [
        ("forged", "dropped_forged"),
        ("non_member", "dropped_non_member"),
        ("wrong_round", "dropped_wrong_round"),
        ("replay", "dropped_duplicate"),
        ("malformed", "dropped_malformed"),
        ("oversized", "dropped_oversized"),
    ],
)
def test_bad_message_is_dropped_counted_and_the_node_keeps_working(peers, attack, counter):
    attacker, victims = peers[2], peers[:2]
    before = [v.request("stats")["stats"] for v in victims]
    attacker.request("attack", kind=attack, round=1)
    for v, b in zip(victims, before):
        v.request("wait_stats", minimum={counter: b[counter] + 1}, timeout=15.0)
    # still working: a fresh valid envelope from the attacker's node arrives at both victims
    item = attacker.request("publish", round=1, blob_size=2000, with_blob=False)
    for v, b in zip(victims, before):
        v.request("expect", round=1, items=[item], timeout=15.0, blobs=False)
        after = v.request("stats")["stats"]
        assert after["received"] == b["received"] + 1, (b, after)


def test_equivocation_is_kept_as_evidence(peers):
    attacker = peers[2]
    attacker.request("attack", kind="equivocate", round=1)
    for v in peers[:2]:
        def has_evidence(v=v) -> list:
            return [e for e in v.request("equivocations")["equivocations"] if e["round"] == 1]
        deadline = time.monotonic() + 15
        while not has_evidence():
            assert time.monotonic() < deadline, "equivocation not recorded within 15 s"
            time.sleep(0.1)
        (evidence,) = has_evidence()
        assert evidence["sender"] == Account.from_key(
            hashlib.sha256(b"fedledger-test-member-2").digest()).address
        assert len(evidence["update_hashes"]) >= 2


def test_publish_to_receive_latency(peers, tmp_path_factory):
    """One sender at a time publishes an envelope, then a 1 MiB sealed blob; latency to each receiver.

    Wall clock across processes on one machine: publish start (sender) -> accepted/reassembled (receiver).
    """
    samples: dict[str, list[float]] = {"envelope": [], "blob_1MiB": []}
    for _repeat in range(3):
        for s, sender in enumerate(peers):
            receivers = [p for i, p in enumerate(peers) if i != s]
            update_hash = os.urandom(32).hex()
            for r in receivers:  # waiting before the publish starts
                r.send("expect", round=2, items=[{"update_hash": update_hash}], timeout=20.0)
            item = sender.request("publish", round=2, blob_size=1 << 20, update_hash=update_hash)
            for r in receivers:
                arrival = r.read(timeout=25)["arrivals"][update_hash]
                samples["envelope"].append(arrival["envelope"] - item["t_envelope"])
                samples["blob_1MiB"].append(arrival["blob"] - item["t_blob"])
    report = {
        kind: {"n": len(v), "median_ms": round(1000 * statistics.median(v), 1), "max_ms": round(1000 * max(v), 1)}
        for kind, v in samples.items()
    }
    print("\ngossip latency, 3 processes on loopback:", json.dumps(report))
    out = tmp_path_factory.getbasetemp() / "gossip_latency.json"
    out.write_text(json.dumps({"report": report, "samples": samples}))
    assert report["envelope"]["median_ms"] < 2000 and report["blob_1MiB"]["median_ms"] < 5000, report


def test_stop_leaves_no_running_threads_and_processes_exit(peers):
    for p in peers:
        p.send("stop")
    for p in peers:
        reply = p.read(timeout=20)
        assert reply["leftover_threads"] == [], reply
        assert reply["stop_seconds"] < 10
        assert p.proc.wait(15) == 0, p.stderr()


# ---------------------------------------------------------------- in-process


def _validator(members=(), round_=1) -> EnvelopeValidator:
    return EnvelopeValidator(
        federation="0x" + "fe" * 20, chain_id=31337, is_member=set(members).__contains__,
        current_round=lambda: round_,
    )


def test_in_process_start_stop_leaves_no_threads():
    before = set(threading.enumerate())
    node = GossipNode(validator=_validator())
    address = node.start()
    assert address.startswith("/ip4/127.0.0.1/tcp/") and "/p2p/" in address
    node.stop()
    node.stop()  # idempotent
    assert set(threading.enumerate()) - before == set()
    with pytest.raises(GossipError, match="not running"):
        node.peers()


def test_own_message_that_peers_would_drop_is_refused_and_bad_dial_fails_fast():
    account = Account.from_key(b"\x07" * 32)
    with GossipNode(validator=_validator(members=())) as node:
        env = Envelope.create(
            account, federation="0x" + "fe" * 20, chain_id=31337, round=1, update_hash=b"\x01" * 32,
            cid="bafkrei", wrapped_keys=b"", blob_sha256=hashlib.sha256(b"x").digest(), blob_size=1,
        )
        with pytest.raises(GossipError, match="non_member"):
            node.publish_envelope(env)
        with pytest.raises(GossipError, match="multiaddr"):
            node.connect("not-an-address", timeout=2)
        t0 = time.monotonic()
        with pytest.raises(GossipError):
            node.connect("/ip4/127.0.0.1/tcp/1/p2p/" + node.multiaddr.rsplit("/", 1)[1], timeout=3)
        assert time.monotonic() - t0 < 10
        assert node.stats.published == 0


def test_per_sender_cap_bounds_what_a_member_can_make_us_store():
    member = Account.from_key(b"\x08" * 32)
    federation = "0x" + "fe" * 20
    receiver = GossipNode(validator=_validator(members=[member.address]), max_envelopes_per_sender_round=2)
    sender = GossipNode(validator=_validator(members=[member.address]), bootstrap=[receiver.start()])
    try:
        sender.start()
        assert sender.wait_for_peers(1, 15) and receiver.wait_for_peers(1, 15), "nodes did not connect"
        for i in range(3):
            sender.publish_envelope(Envelope.create(
                member, federation=federation, chain_id=31337, round=1, update_hash=bytes([i]) * 32,
                cid="bafkrei", wrapped_keys=b"", blob_sha256=hashlib.sha256(b"x").digest(), blob_size=1,
            ))
        assert receiver.wait_for(lambda: receiver.stats.dropped_limit >= 1, 15), receiver.stats
        assert len(receiver.envelopes(1)) == 2 and len(sender.envelopes(1)) == 3  # own ones are never capped
        (evidence,) = receiver.equivocations()
        assert evidence.sender == member.address and len(evidence.envelopes) == 2
    finally:
        sender.stop()
        receiver.stop()
