"""Reconcile with the chain, always (issue 12, finding 1 / deliverable 1).

A peer whose mined commit or vote vanishes from the chain (here: a real anvil reorg, `anvil_reorg`, that drops
exactly that transaction and re-mines every other one, so only the victim sees anything) notices it while it
waits for the next phase, logs one line, re-sends it — the same update, from the sealed blob already on disk —
and the round still finalizes with it. A state file claiming transactions the chain lacks is corrected when the
node starts. A transaction counts only `confirmations` blocks deep, and a reorg above that depth is survived.

The victim runs in this process (its ledger binding drops its own transaction right after it was mined, the
"anvil killed -9 within a second of mining" case); the other members are real `fedledger peer run` processes.
"""
from __future__ import annotations

import io
import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from devnet.anvil import _rpc
from helpers.peer_proc import PeerProcess
from ledger_tools.blobstore import IpfsBlobStore
from ledger_tools.chain import FederationLedger
from peer.config import PeerConfig
from peer.crypto.identity import PeerIdentity
from peer.loop import reconcile
from peer.loop.log import NodeLog
from peer.loop.node import PeerNode
from peer.loop.reconcile import OnChain
from peer.loop.state import PeerState, Phase

ROUND_TIMEOUT = 300


def drop_tx(rpc_url: str, tx_hash: str) -> None:
    """A reorg that drops exactly `tx_hash`: every block from its block on is replaced, every other
    transaction of those blocks re-mined at the same offset (its sender never notices)."""
    block = int(_rpc(rpc_url, "eth_getTransactionReceipt", [tx_hash])["blockNumber"], 16)
    head = int(_rpc(rpc_url, "eth_blockNumber", []), 16)
    keep = []
    for n in range(block, head + 1):
        for h in _rpc(rpc_url, "eth_getBlockByNumber", [hex(n), False])["transactions"]:
            if h != tx_hash:
                keep.append([_rpc(rpc_url, "eth_getRawTransactionByHash", [h]), n - block])
    _rpc(rpc_url, "anvil_reorg", [head - block + 1, keep])
    assert _rpc(rpc_url, "eth_getTransactionReceipt", [tx_hash]) is None


class VanishingLedger(FederationLedger):
    """The member's binding whose first commit (or vote) is dropped from the chain right after it was mined."""

    vanish: set[str]
    dropped: list[tuple[str, float]]

    def commit(self, *args, **kwargs):
        return self._maybe_drop("commit", super().commit(*args, **kwargs))

    def vote(self, *args, **kwargs):
        return self._maybe_drop("vote", super().vote(*args, **kwargs))

    def _maybe_drop(self, kind: str, receipt):
        if kind in self.vanish:
            self.vanish.discard(kind)
            drop_tx(self.rpc_url, receipt.tx_hash)
            self.dropped.append((receipt.tx_hash, time.time()))
        return receipt


def _victim(peer, vanish: set[str] = frozenset(), **overrides) -> tuple[PeerNode, VanishingLedger, io.StringIO]:
    cfg = PeerConfig.from_toml(peer.config_path).with_overrides(max_rounds=1, gossip=False, **overrides)
    identity = PeerIdentity.load(cfg.state_dir, Path(cfg.password_file).read_text())
    ledger = VanishingLedger(cfg.rpc_url, cfg.contract, identity.account, deploy_block=cfg.from_block)
    ledger.vanish, ledger.dropped = set(vanish), []
    stream = io.StringIO()
    node = PeerNode(cfg, identity, ledger=ledger, blobstore=IpfsBlobStore(cfg.ipfs_api),
                    nlog=NodeLog(identity.address, "victim", json_mode=True, stream=stream))
    return node, ledger, stream


def _events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.startswith("{")]


def _pick(events: list[dict], phase: str, event: str) -> list[dict]:
    return [e for e in events if e.get("phase") == phase and e.get("event") == event]


def _record(peer, r: int) -> dict:
    return json.loads((peer.state_dir / "node" / "state.json").read_text())["rounds"][str(r)]


def _run_round_one(fed, node: PeerNode) -> None:
    """The victim in a thread, the other members as processes, until round 1 settled everywhere."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            node.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            failure.append(exc)

    import torch

    torch.set_num_threads(1)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    procs = [PeerProcess(p.config_path, "--max-rounds", "1").start() for p in fed.peers[1:]]
    try:
        for p in procs:
            assert p.wait(timeout=ROUND_TIMEOUT) == 0, p.tail()
        thread.join(ROUND_TIMEOUT)
        assert not thread.is_alive(), "the victim did not settle round 1"
        assert not failure, failure
    finally:
        node.stop()
        for p in procs:
            p.kill()


def test_a_vanished_commit_is_resent_and_the_round_finalizes_with_it(local_federation):
    fed = local_federation(3, commit_period=90)
    victim = fed.peers[0]
    node, ledger, stream = _victim(victim, {"commit"})
    _run_round_one(fed, node)

    events = _events(stream)
    vanished = _pick(events, "commit", "vanished")
    assert len(vanished) == 1 and "re-sending the same update" in vanished[0]["message"], vanished
    mined = _pick(events, "commit", "mined")
    assert len(mined) == 2 and mined[0]["update_hash"] == mined[1]["update_hash"], mined
    assert len(_pick(events, "train", "done")) == 1, "the update was not trained again"
    print(f"\ncommit re-sent {mined[1]['ts'] - ledger.dropped[0][1]:.2f} s after it vanished")

    chain = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    fin = chain.finalization(1)
    assert fin is not None, "round 1 finalized"
    commits = chain.commitments(1)
    assert len(commits) == 3
    mine = next(c for c in commits if c.member == victim.address)
    rec = _record(victim, 1)
    assert mine.update_hash.hex() == rec["update_hash"]
    assert "0x" + mine.update_hash.hex()[:16] == mined[0]["update_hash"], "the re-sent commit is the first update"
    assert (rec["commit_tx"], rec["commit_status"], rec["phase"]) == (mine.tx_hash, "confirmed", "finalized")
    assert victim.address not in fin.excluded
    assert rec["digest"] == fin.digest.hex(), "the victim computed the finalized outcome"


def test_a_vanished_vote_is_resent_and_the_round_finalizes(local_federation):
    fed = local_federation(3)
    victim = fed.peers[0]
    node, ledger, stream = _victim(victim, {"vote"})
    _run_round_one(fed, node)

    events = _events(stream)
    vanished = _pick(events, "vote", "vanished")
    assert len(vanished) == 1 and "voting again" in vanished[0]["message"], vanished
    mined = _pick(events, "vote", "mined")
    assert len(mined) == 2 and mined[0]["digest"] == mined[1]["digest"], mined
    print(f"\nvote re-sent {mined[1]['ts'] - ledger.dropped[0][1]:.2f} s after it vanished")

    chain = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    fin = chain.finalization(1)
    assert fin is not None
    mine = [v for v in chain.votes(1) if v.member == victim.address]
    assert len(mine) == 1 and mine[0].digest == fin.digest
    rec = _record(victim, 1)
    assert (rec["vote_tx"], rec["vote_status"], rec["phase"]) == (mine[0].tx_hash, "confirmed", "finalized")


def test_a_state_file_claiming_what_the_chain_lacks_is_corrected_on_load(local_federation):
    """The file says round 1 committed and voted (transactions a restarted chain lost); on start-up both claims
    are taken back out, one line each, and the record is rewound to the step that must run again."""
    fed = local_federation(2)
    victim = fed.peers[0]
    fake_commit, fake_vote = "0x" + "c0" * 32, "0x" + "70" * 32
    state = PeerState(victim.state_dir, federation=fed.contract, address=victim.address)
    state.advance(state.record(1), Phase.VOTED, cid="bafkreifake", update_hash="ab" * 32, commit_tx=fake_commit,
                  commit_status="confirmed", vote_tx=fake_vote, vote_status="confirmed", digest="cd" * 32)
    node, _, stream = _victim(victim)
    node.check_startup()
    node.reconcile_state()

    rec = _record(victim, 1)
    assert rec["phase"] == "published", rec
    assert (rec["commit_tx"], rec["commit_status"], rec["vote_tx"], rec["vote_status"]) == (None, None, None, None)
    events = _events(stream)
    assert [e["message"].split(" is no longer")[0] for e in _pick(events, "vote", "vanished")] == [
        f"vote tx {fake_vote} (digest 0x{'cd' * 8})"]
    assert [e["message"].split(" is no longer")[0] for e in _pick(events, "commit", "vanished")] == [
        f"commit tx {fake_commit} (update 0x{'ab' * 8})"]


def _ctx(ledger: FederationLedger, tmp_path: Path, confirmations: int, members: int) -> SimpleNamespace:
    stream = io.StringIO()
    return SimpleNamespace(
        ledger=ledger, me=ledger.account.address, cfg=SimpleNamespace(confirmations=confirmations, commit_margin=1.0),
        retry=lambda what, fn, round=None: fn(), clock=lambda: float(ledger.chain_time()),
        membership=SimpleNamespace(members=dict.fromkeys(range(members))),
        state=PeerState(tmp_path / ledger.account.address, federation=ledger.address, address=ledger.account.address),
        nlog=NodeLog(ledger.account.address, "t", json_mode=True, stream=stream), stream=stream)


@pytest.mark.parametrize("depth", [1, 3])
def test_a_commit_is_done_only_at_the_confirmation_depth_and_a_shallow_reorg_is_survived(
        make_federation, anvil, tmp_path, depth):
    fed = make_federation(3)
    ctx = _ctx(fed.members[0], tmp_path, depth, members=3)
    rec = ctx.state.record(1)
    assert reconcile.commit(ctx, 1, rec) is OnChain.MISSING and rec.phase is Phase.NEW

    receipt = fed.members[0].commit(1, b"\x01" * 32, "bafkreiupdate1", 100)
    ctx.state.update(rec, commit_tx=receipt.tx_hash, commit_status="pending")
    for _ in range(depth):
        assert reconcile.commit(ctx, 1, rec) is OnChain.PENDING
        assert rec.phase is Phase.NEW and rec.commit_status == "pending", "not done before the depth"
        _rpc(anvil.rpc_url, "anvil_mine", [hex(1)])
    assert reconcile.commit(ctx, 1, rec) is OnChain.CONFIRMED
    assert (rec.phase, rec.commit_status, rec.commit_tx) == (Phase.COMMITTED, "confirmed", receipt.tx_hash)

    # a second member's commit, reorged out while shallower than the depth: never claimed, then taken back
    other = _ctx(fed.members[1], tmp_path, depth, members=3)
    orec = other.state.record(1)
    receipt = fed.members[1].commit(1, b"\x02" * 32, "bafkreiupdate2", 100)
    other.state.update(orec, commit_tx=receipt.tx_hash, commit_status="pending", cid="bafkreiupdate2")
    assert reconcile.commit(other, 1, orec) is OnChain.PENDING and orec.phase is Phase.NEW
    _rpc(anvil.rpc_url, "anvil_reorg", [1, []])
    assert reconcile.commit(other, 1, orec) is OnChain.MISSING
    assert (orec.phase, orec.commit_tx, orec.commit_status) == (Phase.NEW, None, None)
    assert "re-sending the same update" in other.stream.getvalue()
    # the first commit, deeper than the reorg, still stands
    assert reconcile.commit(ctx, 1, rec) is OnChain.CONFIRMED and rec.phase is Phase.COMMITTED


STATE_INTERVAL = 20  # s between anvil's state dumps: the kill lands well after the last one


def test_anvil_killed_right_after_a_commit_loses_no_commit(ipfs, tmp_path):
    """The issue's scenario: anvil (state file) is killed -9 as soon as the first commit of round 1 is mined and
    restarted from its last dump, which lacks that commit (and any mined after the dump). Every peer whose commit
    the chain lost says so once and re-sends it; round 1 finalizes with all three updates and every peer's
    state.json holds exactly the transactions the chain holds."""
    import os
    import signal

    from devnet.anvil import start_anvil
    from devnet.bootstrap import LOCAL_ROUND_PARAMS, create_local_federation
    from devnet.ports import free_port, port_in_use

    state_file = tmp_path / "chain" / "state.json"
    anvil = start_anvil(port=free_port(), state_file=state_file, state_interval=STATE_INTERVAL,
                        log_path=tmp_path / "chain" / "anvil.log")
    procs: list[PeerProcess] = []
    try:
        fed = create_local_federation(tmp_path / "fed", 3, rpc_url=anvil.rpc_url, ipfs_api=ipfs.api_url,
                                      params=LOCAL_ROUND_PARAMS.replace(rule="fedavg", commit_period=150,
                                                                        vote_period=40), scrypt_n=2**12)
        # a graceful restart dumps the deployment (SIGTERM) and starts the dump clock over: the next dump is
        # STATE_INTERVAL away when the peers start (was: a fixed sleep until a periodic dump held the deployment)
        anvil.stop()
        while port_in_use(anvil.port):
            time.sleep(0.1)
        anvil = start_anvil(port=anvil.port, state_file=state_file, state_interval=STATE_INTERVAL,
                            log_path=tmp_path / "chain" / "anvil.log")
        assert FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block).current_round() == 1
        procs = [PeerProcess(p.config_path, "--max-rounds", "1").start() for p in fed.peers]
        deadline = time.monotonic() + 180
        while not any(p.find(lambda e: e.get("phase") == "commit" and e.get("event") == "mined") for p in procs):
            assert time.monotonic() < deadline, "no commit mined"
            time.sleep(0.05)
        os.kill(anvil.pid, signal.SIGKILL)
        killed = time.time()
        anvil.stop()  # reaps it
        while port_in_use(anvil.port):
            time.sleep(0.1)
        mined_before = {p.config_path.parent.name: [e["tx"] for e in p.events if e.get("phase") == "commit"
                                                    and e.get("event") == "mined"] for p in procs}
        anvil = start_anvil(port=anvil.port, state_file=state_file, state_interval=STATE_INTERVAL,
                            log_path=tmp_path / "chain" / "anvil.log")
        chain = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
        held = {c.tx_hash for c in chain.commitments(1)}
        lost = {name for name, txs in mined_before.items() if txs and not set(txs) & held}
        assert lost, f"the restarted chain kept every commit ({mined_before}); the scenario did not happen"
        for p in procs:
            assert p.wait(timeout=ROUND_TIMEOUT) == 0, p.tail()
        finalized = chain.finalization(1)
        commits = {c.member: c for c in chain.commitments(1)}
        votes = chain.votes(1)
    finally:
        for p in procs:
            p.kill()
        anvil.stop()

    assert finalized is not None, "round 1 finalized"
    assert len(commits) == 3
    for peer, proc in zip(fed.peers, procs):
        vanished = [e for e in proc.events if e.get("phase") == "commit" and e.get("event") == "vanished"]
        assert len(vanished) == (peer.config_path.parent.name in lost), (peer.address, vanished)
        rec = _record(peer, 1)
        assert (rec["commit_tx"], rec["commit_status"]) == (commits[peer.address].tx_hash, "confirmed")
        assert rec["update_hash"] == commits[peer.address].update_hash.hex()
        mine = [v for v in votes if v.member == peer.address]
        assert rec["vote_tx"] == (mine[0].tx_hash if mine else None)
        if vanished:
            resent = next(e for e in proc.events if e.get("phase") == "commit" and e.get("event") == "mined"
                          and e["ts"] > vanished[0]["ts"])
            print(f"\n{peer.config_path.parent.name}: commit re-sent {resent['ts'] - killed:.1f} s after the kill")


# --- after a chain rollback (docs/reliability.md, chaos findings 1-3) -----------------------------------------

def _snapshot(rpc_url: str) -> str:
    return _rpc(rpc_url, "evm_snapshot", [])


def _revert(rpc_url: str, snap: str) -> None:
    assert _rpc(rpc_url, "evm_revert", [snap])


def test_a_window_verdict_made_before_the_round_reopened_is_judged_again(make_federation, anvil, tmp_path):
    """Finding 1: a chain restart lost round 1's finalization, so round 2 does not exist for a while. The
    NO_COMMIT verdict a peer makes then (start 0) holds while the round stays unopened, and is dropped as soon as
    the chain opens round 2 (fresh windows); a verdict judged on the round as it now stands is kept."""
    fed = make_federation(3)
    ctx = _ctx(fed.members[0], tmp_path, 0, members=3)
    snap = _snapshot(anvil.rpc_url)
    fed.run_round(1)
    first_start = fed.ledger.round_info(2).start
    assert first_start > 0
    _revert(anvil.rpc_url, snap)  # the restarted chain: round 1 open again, round 2 never opened
    info = fed.ledger.round_info(2)
    assert info.start == 0
    rec = ctx.state.record(2)
    ctx.state.advance(rec, Phase.PUBLISHED, cid="bafkreiupdate", update_hash="ab" * 32, sealed_sha256="cd" * 32)
    ctx.state.advance(rec, Phase.NO_COMMIT, notes=["commit window closed"], verdict_start=info.start)
    assert reconcile.round_(ctx, 2, rec) is False and rec.phase is Phase.NO_COMMIT, "round 2 still unopened"

    fed.advance(5)
    fed.run_round(1)  # finalized again: round 2 opens now, later than the first time
    start = fed.ledger.round_info(2).start
    assert start not in (0, first_start)
    assert reconcile.round_(ctx, 2, rec) is True
    assert (rec.phase, rec.verdict_start) == (Phase.PUBLISHED, None), "the commit step judges the window again"
    assert "reopened" in ctx.stream.getvalue()
    saved = PeerState(ctx.state.dir.parent, federation=fed.ledger.address, address=ctx.me).rounds[2]
    assert saved.phase is Phase.PUBLISHED

    # an ABSTAINED verdict judged on the round as it stands now is kept
    ctx.state.advance(rec, Phase.ABSTAINED, verdict_start=start)
    assert reconcile.round_(ctx, 2, rec) is False and rec.phase is Phase.ABSTAINED


class _Models:
    """A ModelStore's blob store: any CID's bytes, with the CIDs asked for."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def cat(self, cid: str, expected_sha256: bytes, max_bytes: int | None = None) -> bytes:
        self.asked.append(cid)
        return cid.encode()


def test_a_vote_recomputed_after_the_round_finalized_starts_from_the_model_before_it(
        make_federation, anvil, tmp_path):
    """Finding 2: peer0's vote re-sent after a rollback, once the others had finalized the round again, was
    computed from the chain's *current* model, M(r) instead of M(r-1), so its digest differed. The model store
    now gives M(r-1) for round r whatever the chain finalized since; and a finalized record takes the chain's
    digest, never the peer's own."""
    from helpers.fixtures_chain import AGG, CID_AGG
    from peer.loop import settle
    from peer.loop.log import Timer
    from peer.loop.model_store import ModelStore

    fed = make_federation(3)
    ctx = _ctx(fed.members[0], tmp_path, 0, members=3)
    blobs = _Models()
    store = ModelStore(tmp_path / "models", ledger=fed.ledger, blobstore=blobs, retry=ctx.retry, nlog=ctx.nlog)
    genesis = fed.ledger.params().genesis_model_hash
    assert store.current(1)[1] == genesis  # round 1 open: the chain's current model is M(0)
    fed.run_round(1)
    assert store.current(1)[1] == genesis, "round 1 finalized meanwhile: still M(0) for round 1"
    assert blobs.asked[-1] == "bafkreigenesis"
    assert store.current(2)[1] == AGG
    fed.run_round(2)
    assert store.current(2)[1] == AGG and blobs.asked[-1] == CID_AGG, "M(1) for round 2, from its finalization"

    fin = fed.ledger.finalization(1)
    rec = ctx.state.record(1)
    ctx.state.advance(rec, Phase.VOTED, digest="4c" * 32, vote_tx="0x" + "70" * 32, vote_status="confirmed")
    ctx.cfg.evaluate = False
    ctx.models = SimpleNamespace(current=lambda r: (b"", b""))
    settle._record_finalized(ctx, 1, rec, Timer())
    saved = PeerState(ctx.state.dir.parent, federation=fed.ledger.address, address=ctx.me).rounds[1]
    assert (saved.phase, saved.digest) == (Phase.FINALIZED, fin.digest.hex()), "the chain's digest"
    assert saved.aggregate_hash == fin.aggregate_hash.hex()
    assert any("4c4c" in n and "differs" in n for n in saved.notes)


def test_a_late_vote_lost_in_a_rollback_is_taken_back_out_of_a_settled_record(make_federation, anvil, tmp_path):
    """Finding 3: a late vote mined, recorded (round finalized, vote confirmed), then lost when the chain rolled
    back. The next check sees the head went backwards and re-checks recent records, settled ones included: the
    vote is taken out of the file and re-sent while the vote deadline allows it, else noted as lost."""
    from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, oz_tree

    fed = make_federation(3)
    ctx = _ctx(fed.members[0], tmp_path, 0, members=3)
    ctx.head_seen = None
    fed.commit_all(1)
    tree = oz_tree(1, {})
    for m in fed.members[1:]:
        m.vote(1, AGG, CID_AGG, tree.root, CID_REWARDS, [])
    assert fed.ledger.finalization(1) is not None
    snap = _snapshot(anvil.rpc_url)
    late = fed.members[0].vote(1, AGG, CID_AGG, tree.root, CID_REWARDS, [])
    assert late.late
    rec = ctx.state.record(1)
    ctx.state.advance(rec, Phase.FINALIZED, digest=fed.ledger.finalization(1).digest.hex(), vote_tx=late.tx_hash,
                      vote_status="confirmed", model_hash="9e" * 32)
    assert reconcile.after_rollback(ctx, 2) is False, "first look: the head is only recorded"
    assert reconcile.after_rollback(ctx, 2) is False, "nothing changed"

    _revert(anvil.rpc_url, snap)  # the chain restarted from a dump without the late vote's block
    assert reconcile.after_rollback(ctx, 2) is True
    assert (rec.phase, rec.vote_tx, rec.vote_status) == (Phase.COLLECTED, None, None), "re-sent by settle_earlier"
    assert "voting again" in ctx.stream.getvalue()

    # the same loss once the vote deadline has passed: the record stays finalized, the vote noted as lost
    resent = fed.members[0].vote(1, AGG, CID_AGG, tree.root, CID_REWARDS, [])
    ctx.state.advance(rec, Phase.FINALIZED, vote_tx=resent.tx_hash, vote_status="confirmed")
    assert reconcile.after_rollback(ctx, 2) is False
    _rpc(anvil.rpc_url, "anvil_reorg", [1, []])  # same height, other block: the re-sent vote is gone
    deadline = fed.ledger.round_info(1).vote_deadline
    ctx.clock = lambda: float(deadline + 10)
    assert reconcile.after_rollback(ctx, 2) is False, "nothing to run again: the round is settled, the vote too late"
    assert (rec.phase, rec.vote_tx, rec.vote_status) == (Phase.FINALIZED, None, None)
    assert any(resent.tx_hash in n and "vanished" in n for n in rec.notes)
    saved = PeerState(ctx.state.dir.parent, federation=fed.ledger.address, address=ctx.me).rounds[1]
    assert saved.vote_tx is None, "the state file never claims what the chain does not hold"
