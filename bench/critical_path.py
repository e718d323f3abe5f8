"""One peer's ledger round on the new path, timed as real wall time with the background work really running.

The series model (`bench.overhead.round_model`) adds up terms each measured alone. The peer no longer does
its IPFS adds on the round's path (`peer.loop.publisher`) and unseals each update as its bulk copy arrives
(`peer.loop.unseal_ahead`), so the remaining terms overlap with work that still competes for the same 2 cores.
Dropping the moved terms from the sum would credit that overlap for free; this replay measures it instead.

After a `ChainTransport(detail=True)` run (anvil + the local IPFS node, the federation at round R), one
process plays the slowest peer and the receiver of its update, on the real code and the real chain:

    t0  seal own update for all members, persist it (fsync, as the peer's state does) while its CID is computed
        locally (`peer.loop.publisher.cids_while`, the peer's own code), IPFS add queued on a real
        `Publisher`, held as the peer holds it (until the vote, at most `own_update_hold`), then in the background
    t1  ← commit-ready.  Concurrently: the exchange — the other n−1 sealed updates arrive at an even pace over
        the measured exchange time E (the lower bound of one blob's bulk transfer, as in the baseline: all n−1
        inside it is conservative), each unsealed on arrival by `UnsealAhead` — and the commit tx (real).
        The commitments are read in the background from t0 on (`peer.loop.commitments_ahead`, its own chain
        connection, as the peer starts it before training — here later, so no credit is taken for the
        training time), the own one taken from the mined commit: once every member has one the set is
        complete and nothing is read after the commit (else the chain is read then, as before). Then take the
        n−1 unsealed updates
    t2  aggregate (Multi-Krum, the real `compute_round_outcome`)
    t3  CIDs of the new model and reward tree computed locally while the tree is persisted, vote tx (real),
        then the own add released and the results' adds queued (`peer.loop.vote_step.send_vote`)
    t4  ← voted.  The publisher is then drained: when its adds landed is reported (they must land before the
        round's vote deadline; they do not gate the round)

    ledger round     = slowest peer's learning + (t4 − t0)
    no-ledger round  = slowest peer's learning + E + aggregate (the same aggregation timed in the same replay,
                       just before, with nothing in the background)

The other members commit (before t0) and vote until finalized (after t4) untimed, as faster peers would.
"""
from __future__ import annotations

import functools
import gc
import hashlib
import io
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from consensus.commitment import NO_DP, Commitment, CommittedUpdate
from consensus.round_outcome import compute_round_outcome
from ledger_tools.blobstore import unixfs_cid
from peer.config import PeerConfig
from peer.crypto.seal import seal, unseal
from peer.loop.commitments_ahead import CommitmentsAhead, reader_for
from peer.loop.log import NodeLog
from peer.loop.publisher import Publisher, cids_while, own_update_hold
from peer.loop.state import atomic_write_bytes
from peer.loop.unseal_ahead import UnsealAhead

GOSSIP_WAIT = PeerConfig.model_fields["gossip_wait"].default  # the peer's default: sets the own add's hold


class _Envelope:
    __slots__ = ("sender", "update_hash")

    def __init__(self, sender: str, update_hash: bytes) -> None:
        self.sender, self.update_hash = sender, update_hash


class _PacedGossip:
    """The gossip node's read side, fed by a clock: blob k of n−1 'arrives' (its spool file becomes visible) at
    start + E·k/(n−1). Reads come from the spool files, as `GossipNode.blob` does."""

    def __init__(self, round: int, spool: dict[tuple[str, bytes], Path]) -> None:
        self.round, self.spool = round, spool
        self.arrived: set[tuple[str, bytes]] = set()
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)

    def wait_for(self, predicate, timeout: float) -> bool:
        """As `GossipStore.wait_for`: woken at each arrival."""
        deadline = time.monotonic() + timeout
        while not predicate():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self.changed:
                self.changed.wait(remaining)
        return True

    def envelopes(self, round: int) -> list[_Envelope]:
        with self.lock:
            return [_Envelope(s, h) for s, h in self.arrived] if round == self.round else []

    def has_blob(self, update_hash: bytes, *, sender: str | None = None) -> bool:
        with self.lock:
            return (sender, update_hash) in self.arrived

    def blob(self, update_hash: bytes, *, sender: str | None = None) -> bytes | None:
        return self.spool[(sender, update_hash)].read_bytes() if self.has_blob(update_hash, sender=sender) else None

    def feed(self, seconds: float) -> threading.Thread:
        order = list(self.spool)

        def run() -> None:
            start = time.perf_counter()
            for k, key in enumerate(order, 1):
                delay = start + seconds * k / len(order) - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                with self.changed:
                    self.arrived.add(key)
                    self.changed.notify_all()

        thread = threading.Thread(target=run, name="paced-exchange", daemon=True)
        thread.start()
        return thread


def _updates_of(transport, r: int) -> dict[str, tuple[bytes, int]]:
    """Round r's canonical updates (member -> (bytes, samples)), unsealed from the transport's copies."""
    me = transport.observer.address
    out = {}
    for c in transport.ledger.commitments(r):
        sealed = transport._gossip_cache[c.cid]
        update = unseal(sealed, me, transport.enc_keys[me], federation=transport.ledger.address, round=r,
                        sender=c.member)
        out[c.member] = (update, c.num_samples)
    return out


def replay_once(engine, transport, updates: dict[str, tuple[bytes, int]], exchange: float, workdir: Path,
                read_ahead: bool = True) -> dict:
    """One replay; `read_ahead=False` replays the path before `peer.loop.commitments_ahead` (the commitments read
    once the commit is mined), for a paired comparison on the same run, chain and load."""
    ledger, me = transport.ledger, transport.observer.address
    R = ledger.current_round()
    params = ledger.params()
    fed = ledger.address
    others = [a for a in updates if a != me]
    # --- untimed set-up: the faster peers' sealed updates for round R spooled (as the bulk path leaves them),
    # and their commitments on chain
    spool: dict[tuple[str, bytes], Path] = {}
    for a in others:
        blob, samples = updates[a]
        sealed = seal(blob, transport.enc_public, federation=fed, round=R, sender=a)
        h = hashlib.sha256(blob).digest()
        path = workdir / f"{R}-{a}.blob"
        path.write_bytes(sealed)
        spool[(a, h)] = path
        transport.bindings[a].commit(R, h, unixfs_cid(sealed), samples)
        del sealed
    own, own_samples = updates[me]
    own_hash = hashlib.sha256(own).digest()
    pool = ledger.round_pool(R)
    rule = dict(rule=params.rule, rule_param=params.rule_param, f=params.f, reward_pool=pool,
                sample_cap=getattr(params, "sample_cap", 0), scale_bits=params.scale_bits)
    members = ledger.members()  # the peer's membership snapshot, read when the round started
    reader = reader_for(ledger)  # the background reads' own connection, made once per process
    commitments_guess = [Commitment(a, hashlib.sha256(updates[a][0]).digest(), "", updates[a][1], round=R)
                         for a in updates]

    # --- the no-ledger aggregation, quiet (nothing in the background)
    t = time.perf_counter()
    compute_round_outcome(round=R, previous_model=engine.model,
                          updates=[CommittedUpdate(c, updates[c.member][0]) for c in commitments_guess], **rule)
    aggregate_quiet = time.perf_counter() - t

    publisher = Publisher(transport.store, NodeLog(me, "bench", json_mode=True, stream=io.StringIO()))
    gossip = _PacedGossip(R, spool)
    marks: dict[str, float] = {}
    # --- t0: seal, persist, CID, queue the add
    t0 = time.perf_counter()
    watch = CommitmentsAhead(R, reader, members, gossip=gossip, me=me).start() if read_ahead else None
    sealed_own = seal(own, transport.enc_public, federation=fed, round=R, sender=me)
    marks["seal"] = time.perf_counter()
    [own_cid] = cids_while(functools.partial(atomic_write_bytes, workdir / f"{R}-sealed.bin", sealed_own),
                           sealed_own)
    marks["persist"] = time.perf_counter()
    own_job = publisher.submit(R, "update", sealed_own, own_cid, hold=own_update_hold(GOSSIP_WAIT))
    del sealed_own
    t1 = time.perf_counter()
    # --- exchange (paced arrivals, unsealed on arrival) alongside the commit tx
    unseal_seconds: list[float] = []

    def timed_unseal(blob: bytes, sender: str, r: int) -> bytes:
        start = time.perf_counter()
        try:
            return unseal(blob, me, transport.enc_keys[me], federation=fed, round=r, sender=sender)
        finally:
            unseal_seconds.append(time.perf_counter() - start)

    ahead = UnsealAhead(R, gossip, timed_unseal, me=me).start()
    feeder = gossip.feed(exchange)
    receipt_c = transport.bindings[me].commit(R, own_hash, own_cid, own_samples)
    if watch is not None:
        watch.own_committed(Commitment(me, own_hash, own_cid, own_samples, R, NO_DP, 0, receipt_c.block_number,
                                       receipt_c.tx_hash))
    marks["commit_mined"] = time.perf_counter()
    commitments = watch.complete() if watch is not None else None
    if watch is not None:
        watch.close()
    read_ahead = commitments is not None
    if commitments is None:
        commitments = ledger.commitments(R)
    marks["read"] = time.perf_counter()
    feeder.join()
    marks["exchange_end"] = time.perf_counter()
    collected = []
    for c in commitments:
        update = own if c.member == me else ahead.take(c)
        if update is None:
            raise RuntimeError(f"replay: {c.member}'s update was not unsealed ahead")
        collected.append(CommittedUpdate(c, update))
    ahead.close()
    t2 = time.perf_counter()
    # --- aggregate with the own add still in the background
    outcome = compute_round_outcome(round=R, previous_model=engine.model, updates=collected, **rule)
    t3 = time.perf_counter()
    tree_json = outcome.reward_tree.to_json()
    tree_bytes = tree_json.encode() if isinstance(tree_json, str) else bytes(tree_json)
    model_cid, rewards_cid = cids_while(functools.partial(atomic_write_bytes, workdir / f"{R}-rewards.json",
                                                          tree_bytes), outcome.new_model, tree_bytes)
    marks["cids"] = time.perf_counter()
    excluded = sorted(outcome.excluded, key=lambda a: int(a, 16))
    receipt = transport.bindings[me].vote(R, outcome.aggregate_hash, model_cid, outcome.rewards_root, rewards_cid,
                                          excluded)
    publisher.release(R)
    jobs = [own_job, publisher.submit(R, "model", outcome.new_model, model_cid),
            publisher.submit(R, "rewards", tree_bytes, rewards_cid)]  # once the vote is out, as `send_vote` does
    t4 = time.perf_counter()
    publisher.drain(600)
    t_drained = time.perf_counter()
    publisher.close(0)
    # --- untimed: the faster peers vote the same outcome until the round finalizes (opens R+1)
    finalized = receipt.finalized
    for a in others:
        if finalized:
            break
        finalized = transport.bindings[a].vote(R, outcome.aggregate_hash, model_cid, outcome.rewards_root,
                                               rewards_cid, excluded).finalized
    for path in spool.values():
        path.unlink(missing_ok=True)
    if commitments != ledger.commitments(R):  # the set the peer aggregated is the chain's, field for field
        raise RuntimeError(f"replay: round {R}'s commitments read ahead differ from the chain's")

    learn = max(engine.peer_seconds[max(engine.peer_seconds)].values())
    ledger_path = t4 - t0
    no_ledger = learn + exchange + aggregate_quiet
    with_ledger = learn + ledger_path
    added = [round(j.done - t0, 3) if j.done is not None else None for j in jobs]
    return {
        "round": R, "finalized": finalized, "slowest_peer_learning": round(learn, 4), "exchange": exchange,
        "aggregate_quiet": round(aggregate_quiet, 4), "aggregate_with_background": round(t3 - t2, 4),
        "terms": {
            "seal own": round(marks["seal"] - t0, 4),
            "persist sealed.bin (fsync) ‖ CID own": round(marks["persist"] - marks["seal"], 4),
            "queue add": round(t1 - marks["persist"], 4),
            "commit tx (during the exchange)": round(marks["commit_mined"] - t1, 4),
            "read commitments": round(marks["read"] - marks["commit_mined"], 4),
            "exchange end → all unsealed": round(t2 - max(marks["exchange_end"], marks["read"]), 4),
            "exchange window + tx + read (t1→t2)": round(t2 - t1, 4),
            "aggregate with the add running": round(t3 - t2, 4),
            "CIDs of results + queue adds": round(marks["cids"] - t3, 4),
            "vote tx": round(t4 - marks["cids"], 4),
        },
        "unseal_seconds_each": sorted(round(x, 4) for x in unseal_seconds),  # AES-GCM of one update, in context
        "commitments_read_ahead": read_ahead, "commitment_reads_in_background": watch.reads if watch else 0,
        "ledger_path_seconds": round(ledger_path, 4),
        "round_no_ledger": round(no_ledger, 4),
        "round_ledger": round(with_ledger, 4),
        "ledger_added": round(with_ledger - no_ledger, 4),
        "ledger_pct": round(100 * (with_ledger - no_ledger) / no_ledger, 1),
        "background_adds_done_after_t0": dict(zip(("update", "model", "rewards"), added)),
        "background_drained_after_vote": round(t_drained - t4, 3),
        "adds_failed": [j.failed for j in jobs if j.failed],
    }


def replay(engine, transport, exchange: float, repeats: int = 3, compare: bool = False, settle: float = 0.0) -> dict:
    """`repeats` replays (rounds R, R+1, …); the median by ledger share is reported, every share kept. With
    `compare`, each replay is paired with one of the path before the commitments were read ahead (the order
    alternating), summarised under `read_after_commit`: the same run, chain, exchange and load. `settle` > 0:
    before each replay, garbage collection, `os.sync()` and `settle` seconds idle. Back to back (0), at 44 MB per
    update the unseal calls slowed 4–7× after the first replay (`unseal_median_by_replay`; docs/overhead.md,
    "Replays back to back and settled"), most likely while the kernel wrote back the earlier replays' IPFS blocks
    and spool files; settled, they keep the first replay's pace. Both are real: back to back is a node whose rounds
    follow each other within the kernel's writeback delay, settled one whose rounds are further apart."""
    updates = _updates_of(transport, engine_round(transport))
    transport._gossip_cache.clear()  # the simulator's sealed copies are no longer needed: memory for the replay
    runs, before = [], []
    with tempfile.TemporaryDirectory(prefix="fedledger-replay-") as tmp:
        for i in range(max(1, repeats)):
            for ahead in ((True, False) if i % 2 == 0 else (False, True)) if compare else (True,):
                if settle > 0:
                    gc.collect()
                    os.sync()
                    time.sleep(settle)
                out = replay_once(engine, transport, updates, exchange, Path(tmp), read_ahead=ahead)
                (runs if ahead else before).append(out)
    median = _summary(runs)
    median["settle_seconds"] = settle
    # per replay, in the order they ran (`runs` is; `_summary` sorts a copy): the median seconds of one update's
    # unseal call
    median["unseal_median_by_replay"] = [round(statistics.median(r["unseal_seconds_each"]), 4)
                                         if r["unseal_seconds_each"] else None for r in runs]
    if before:
        median["read_after_commit"] = {k: v for k, v in _summary(before).items()
                                       if k in ("ledger_pct", "ledger_added", "round_no_ledger", "repeat_pcts",
                                                "repeat_ledger_path_seconds", "ledger_path_median_seconds",
                                                "terms_median", "terms")}
    return median


def _summary(runs: list[dict]) -> dict:
    runs = sorted(runs, key=lambda r: r["ledger_pct"])
    median = dict(runs[len(runs) // 2])
    median["repeat_pcts"] = [r["ledger_pct"] for r in runs]
    median["repeat_ledger_path_seconds"] = [r["ledger_path_seconds"] for r in runs]
    median["ledger_path_median_seconds"] = round(statistics.median(r["ledger_path_seconds"] for r in runs), 4)
    # each term's median over the replays: the phase split, less sensitive to one replay's load than the total
    median["terms_median"] = {k: round(statistics.median(r["terms"][k] for r in runs), 4) for k in runs[0]["terms"]}
    median["commitments_read_ahead_runs"] = sum(bool(r.get("commitments_read_ahead")) for r in runs)
    return median


def engine_round(transport) -> int:
    """The last round the simulator ran (its commitments and sealed copies are what the replay reuses)."""
    return transport.ledger.current_round() - 1
