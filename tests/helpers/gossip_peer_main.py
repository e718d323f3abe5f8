"""One gossip peer in its own OS process, driven by JSON lines on stdin (used by tests/peer/test_gossip.py).

Each command gets exactly one JSON reply line on stdout: {"ok": true, ...} or {"ok": false, "error": ...}.
Logging goes to stderr. Member keys are derived from indices so every process agrees on the federation.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import sys
import threading
import time
import traceback

from eth_account import Account
from eth_account.messages import encode_defunct

from peer.net.admission import EnvelopeValidator
from peer.net.envelope import Envelope
from peer.net.gossip import GossipNode

FEDERATION = "0x" + "fe" * 20
CHAIN_ID = 31337


def member_account(index: int):
    return Account.from_key(hashlib.sha256(b"fedledger-test-member-%d" % index).digest())


def make_envelope(account, round_: int, update_hash: bytes, blob: bytes) -> Envelope:
    return Envelope.create(
        account, federation=FEDERATION, chain_id=CHAIN_ID, round=round_, update_hash=update_hash,
        cid="bafybeig" + hashlib.sha256(blob).hexdigest()[:50], wrapped_keys=os.urandom(3 * 92),
        blob_sha256=hashlib.sha256(blob).digest(), blob_size=len(blob),
    )


class Peer:
    def __init__(self, index: int, members: int, current_round: int, max_per_sender_round: int = 4) -> None:
        self.index = index
        self.account = member_account(index)
        self.members = {member_account(i).address for i in range(members)}
        self.round = current_round
        self.validator = EnvelopeValidator(
            federation=FEDERATION, chain_id=CHAIN_ID, is_member=self.members.__contains__,
            current_round=lambda: self.round,
        )
        self.node = GossipNode(
            validator=self.validator, seed=hashlib.sha256(b"libp2p-%d" % index).digest(),
            max_envelopes_per_sender_round=max_per_sender_round, max_blobs_per_sender_round=max_per_sender_round,
        )
        self.threads_before = {t.ident for t in threading.enumerate()}

    # -- commands -------------------------------------------------------------------------

    def cmd_start(self) -> dict:
        return {"multiaddr": self.node.start(), "address": self.account.address}

    def cmd_connect(self, addrs: list[str], timeout: float = 15.0) -> dict:
        return {"peers": [self.node.connect(a, timeout) for a in addrs]}

    def cmd_wait_peers(self, n: int, timeout: float) -> dict:
        if not self.node.wait_for_peers(n, timeout):
            raise TimeoutError(f"only {self.node.peers()} subscribed after {timeout} s, wanted {n}")
        return {"peers": self.node.peers()}

    def cmd_publish(
        self, round: int, blob_size: int, with_envelope: bool = True, with_blob: bool = True,
        update_hash: str | None = None,
    ) -> dict:
        blob = os.urandom(blob_size)
        update_hash = bytes.fromhex(update_hash) if update_hash else hashlib.sha256(os.urandom(16)).digest()
        env = make_envelope(self.account, round, update_hash, blob)
        out = {"sender": env.sender, "update_hash": update_hash.hex(), "blob_sha256": env.blob_sha256.hex()}
        if with_envelope:
            out["t_envelope"] = time.time()
            self.node.publish_envelope(env)
        if with_blob:
            out["t_blob"] = time.time()
            out["chunks"] = self.node.publish_blob(env, blob, self.account)
        out["t_done"] = time.time()
        return out

    def cmd_expect(self, round: int, items: list[dict], timeout: float, blobs: bool = True) -> dict:
        """Wait for each item's envelope (and blob); report arrival times (wall clock) per item."""
        arrivals: dict[str, dict] = {item["update_hash"]: {} for item in items}

        def poll() -> bool:
            now = time.time()
            got = {e.update_hash.hex(): e for e in self.node.envelopes(round)}
            for item in items:
                h, a = item["update_hash"], arrivals[item["update_hash"]]
                env = got.get(h)
                if env is None:
                    continue
                if "envelope" not in a:
                    assert item.get("sender", env.sender) == env.sender
                    assert item.get("blob_sha256", env.blob_sha256.hex()) == env.blob_sha256.hex()
                    a["envelope"] = now
                if blobs and "blob" not in a:
                    blob = self.node.blob(env.update_hash, env.blob_sha256)
                    if blob is not None:
                        assert hashlib.sha256(blob).digest() == env.blob_sha256 and len(blob) == env.blob_size
                        a["blob"] = now
            return all("envelope" in a and (not blobs or "blob" in a) for a in arrivals.values())

        if not self.node.wait_for(poll, timeout):
            raise TimeoutError(f"missing after {timeout} s: {arrivals}; stats {self.node.stats}")
        return {"arrivals": arrivals}

    def cmd_stats(self) -> dict:
        return {"stats": dataclasses.asdict(self.node.stats)}

    def cmd_wait_stats(self, minimum: dict[str, int], timeout: float) -> dict:
        def reached() -> bool:
            stats = dataclasses.asdict(self.node.stats)
            return all(stats[k] >= v for k, v in minimum.items())

        if not self.node.wait_for(reached, timeout):
            raise TimeoutError(f"stats {self.node.stats} did not reach {minimum} in {timeout} s")
        return self.cmd_stats()

    def cmd_equivocations(self) -> dict:
        return {"equivocations": [
            {"sender": e.sender, "round": e.round, "update_hashes": sorted(x.update_hash.hex() for x in e.envelopes)}
            for e in self.node.equivocations()
        ]}

    def cmd_attack(self, kind: str, round: int) -> dict:
        """Publish one bad message, bypassing our own topic validator (as a malicious peer would)."""
        blob = os.urandom(1000)
        h = hashlib.sha256(os.urandom(8)).digest()
        if kind == "forged":  # claims member 0 as sender, signed by us
            victim = member_account(0)
            env = dataclasses.replace(make_envelope(victim, round, h, blob), signature=b"")
            sig = self.account.sign_message(encode_defunct(primitive=env.signing_bytes())).signature
            data = dataclasses.replace(env, signature=bytes(sig)).to_bytes()
        elif kind == "non_member":
            data = make_envelope(Account.from_key(b"\x42" * 32), round, h, blob).to_bytes()
        elif kind == "wrong_round":
            data = make_envelope(self.account, round + 10, h, blob).to_bytes()
        elif kind == "malformed":
            data = b"FLGS\x01\x01" + os.urandom(200)
        elif kind == "oversized":
            data = b"FLGS" + os.urandom(900 * 1024)
        elif kind == "replay":  # re-gossip an envelope we received (duplicate content, new libp2p message)
            envs = [e for e in self.node.envelopes(round) if e.sender != self.account.address]
            data = envs[0].to_bytes()
        elif kind == "equivocate":  # a second, validly signed envelope with another update hash
            data = make_envelope(self.account, round, h, blob).to_bytes()
        else:
            raise ValueError(kind)
        self.node._call(self._publish_unchecked, data)
        return {}

    async def _publish_unchecked(self, data: bytes) -> None:
        pubsub = self.node._pubsub
        saved = pubsub.topic_validators.pop(self.node.topic)
        try:
            await self.node._publish([data])
        finally:
            pubsub.topic_validators[self.node.topic] = saved

    def cmd_stop(self) -> dict:
        t0 = time.time()
        self.node.stop()
        # Trio's worker-thread cache may linger briefly; the node itself must leave nothing running.
        leftover = [t.name for t in threading.enumerate() if t.ident not in self.threads_before]
        return {"stop_seconds": time.time() - t0, "leftover_threads": leftover}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--members", type=int, default=3)
    parser.add_argument("--round", type=int, default=1)
    parser.add_argument("--max-per-sender-round", type=int, default=4)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    peer = Peer(args.index, args.members, args.round, args.max_per_sender_round)
    print(json.dumps({"ok": True, "event": "spawned"}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        name = request.pop("cmd")
        try:
            reply = {"ok": True, **getattr(peer, f"cmd_{name}")(**request)}
        except Exception as exc:  # noqa: BLE001 - the helper reports every error to its driver
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}
        print(json.dumps(reply), flush=True)
        if name == "stop":
            break
    try:
        peer.node.stop()
    except Exception:  # noqa: BLE001 - best-effort stop at exit
        pass


if __name__ == "__main__":
    main()
