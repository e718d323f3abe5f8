"""Infrastructure restarts under a running federation: the IPFS node and the devnet restart mid-run.

One federation of 3 real `fedledger peer run` processes, with its own IPFS node (fixed port, persistent repo)
and its own anvil (fixed port, state file), runs until one round after the devnet restart (at most 14 rounds):
- round 2: the IPFS node is stopped (SIGTERM) right after the first commit of the round — the others are
  still publishing, every peer is about to collect and publish the round's model + reward tree — and
  restarted on the same port once a peer has reported retrying. The rounds do not wait for it: commits and
  votes carry locally computed CIDs and the adds are retried in the background until the node is back;
- the next round not yet open: anvil is stopped gracefully (SIGTERM: it dumps its state file) right after the
  first commit of the round and restarted on the same port from that file once a peer has reported retrying.
Every round still finalizes, every peer computed the finalized digest, there is exactly one commitment and
at most one vote per member per round, no peer crashed or logged an error, and blobs added before the IPFS
restart are still pinned after it, and every blob a round names (commitments, model, reward tree) is on IPFS
at the end, those added while the node was down included.

Regression (found by that run): peers that come back from a chain outage vote at the same moment; a vote
whose gas was estimated while it was not the finalizing one, mined as the finalizing one, ran out of gas
(a generic `TransactionFailed`, the round resumed as an error, the on-time vote became a late one).
And: a peer without a gossip copy of a blob excluded its honest sender when the IPFS node was down at collect
time (so it would vote another digest than the peers that had the copy); it now waits for the node.
"""
from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from consensus.digest import vote_digest
from devnet.anvil import AnvilProcess, _rpc, dev_accounts, start_anvil
from devnet.bootstrap import LOCAL_ROUND_PARAMS, create_local_federation
from devnet.deploy import deploy_governed_federation
from devnet.ipfs import IpfsProcess, start_ipfs
from devnet.ports import free_port, port_in_use
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, _config
from helpers.peer_proc import PeerProcess
from ledger_tools.blobstore import IpfsBlobStore
from ledger_tools.chain import AlreadyVoted, FederationLedger
from peer.loop.round_clock import send_time_dependent, vote_gas
from peer.loop.state import Phase
from peer.loop.vote_step import vote_tx

ROUNDS = 14  # --max-rounds: room for the rounds that run on while the IPFS node is down (rounds paced >= 3 s: a
#              loaded machine can take many seconds to log the first IPFS retry, and unpaced rounds take ~1 s)


def _records(peer) -> dict[int, dict]:
    doc = json.loads((peer.state_dir / "node" / "state.json").read_text())
    return {int(r): v for r, v in doc["rounds"].items()}


def _wait_any(procs: list[PeerProcess], pred: Callable[[dict], bool], timeout: float, what: str) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            found = p.find(pred)
            if found is not None:
                return found
        dead = [p for p in procs if p.proc is not None and p.proc.poll() is not None]
        if dead:
            raise AssertionError(f"waiting for {what}: peer {dead[0].config_path.parent.name} exited "
                                 f"({dead[0].proc.returncode}):\n{dead[0].tail()}")
        time.sleep(0.1)
    tails = "\n---\n".join(p.tail(15) for p in procs)
    raise AssertionError(f"no peer reported {what} within {timeout:.0f}s; log tails:\n{tails}")


def _wait_port_free(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while port_in_use(port):
        if time.monotonic() > deadline:
            raise AssertionError(f"port {port} still taken {timeout:.0f}s after the service stopped")
        time.sleep(0.1)


def _is_commit_mined(r: int) -> Callable[[dict], bool]:
    return lambda e: e.get("round") == r and e.get("phase") == "commit" and e.get("event") == "mined"


def _is_retry(needle: str, since: float) -> Callable[[dict], bool]:
    return lambda e: (e.get("phase") == "retry" and needle in e.get("message", "").lower()
                      and e.get("ts", 0) >= since)


@pytest.fixture
def services(tmp_path: Path):
    """Own anvil (state file) and IPFS node (persistent repo) on fixed ports; restarted by the test."""
    box: dict[str, AnvilProcess | IpfsProcess] = {}
    box["anvil"] = start_anvil(port=free_port(), state_file=tmp_path / "chain" / "state.json",
                               log_path=tmp_path / "chain" / "anvil.log")
    box["ipfs"] = start_ipfs(api_port=free_port(), repo_dir=tmp_path / "ipfs", offline=True)
    try:
        yield box
    finally:
        box["ipfs"].stop()
        box["anvil"].stop()


def test_ipfs_and_devnet_restart_mid_run(services, tmp_path):
    anvil, ipfs = services["anvil"], services["ipfs"]
    fed = create_local_federation(tmp_path / "fed", 3, rpc_url=anvil.rpc_url, ipfs_api=ipfs.api_url,
                                  params=LOCAL_ROUND_PARAMS.replace(rule="fedavg", commit_period=60, vote_period=40),
                                  scrypt_n=2**12, peer_overrides={"min_round_interval": 3})  # paced: see below
    procs = [PeerProcess(p.config_path, "--max-rounds", str(ROUNDS)).start() for p in fed.peers]
    store = IpfsBlobStore(ipfs.api_url, timeout=10, retries=1, backoff=0.2)
    try:
        # ---- round 2: the IPFS node goes away right after the round's first commit
        _wait_any(procs, _is_commit_mined(2), 120, "a commit mined in round 2")
        ledger = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
        fin1 = ledger.finalization(1)
        assert fin1 is not None
        before = [fed.genesis_cid, fin1.aggregate_cid, fin1.rewards_cid, *(c.cid for c in ledger.commitments(1))]
        stopped = time.time()
        ipfs.stop()
        _wait_port_free(ipfs.api_port)
        _wait_any(procs, _is_retry("ipfs", stopped), 60, "an IPFS retry while the node was down")
        services["ipfs"] = ipfs = start_ipfs(api_port=ipfs.api_port, repo_dir=ipfs.repo_dir, offline=True)
        missing = [cid for cid in before if not store.has(cid)]
        assert not missing, f"blobs pinned before the IPFS restart are gone after it: {missing}"

        # ---- a later round: the devnet goes away (graceful: state dumped) right after the round's first commit.
        # The IPFS outage did not stall the rounds (commits and votes carry locally computed CIDs, the adds wait
        # in the background: peer.loop.publisher), so take the next round that has not opened yet.
        later = ledger.current_round() + 1
        assert later < ROUNDS, f"the federation ran through round {later - 1} while IPFS was down"
        _wait_any(procs, _is_commit_mined(later), 120, f"a commit mined in round {later}")
        stopped = time.time()
        anvil.stop()
        _wait_port_free(anvil.port)
        _wait_any(procs, _is_retry("", stopped), 60, "a chain retry while anvil was down")
        services["anvil"] = anvil = start_anvil(port=anvil.port, state_file=anvil.state_file,
                                                log_path=tmp_path / "chain" / "anvil2.log")

        # one whole round after the chain outage's round shows the federation running on; the rounds after it
        # (--max-rounds is only the room for the outage rounds) would assert nothing new: stop gracefully there
        settled = later + 1
        for p in procs:
            p.wait_for(lambda e: e.get("phase") == "round" and e.get("round") == settled
                       and e.get("event") == Phase.FINALIZED.value, 150)
        stoppers = [threading.Thread(target=p.stop) for p in procs]  # SIGTERM: finish the step, persist, exit 0
        for t in stoppers:
            t.start()
        for t in stoppers:
            t.join()
        for p in procs:
            assert p.wait(timeout=30) == 0, p.tail()
    finally:
        store.close()
        for p in procs:
            p.kill()

    for p in procs:
        errors = [e for e in p.events if e.get("level") == "error"]
        assert not errors, f"{p.config_path.parent.name} logged errors: {errors}\n{p.tail()}"

    ledger = FederationLedger(anvil.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    members = {p.address for p in fed.peers}
    pinned = IpfsBlobStore(ipfs.api_url, timeout=10, retries=1, backoff=0.2)
    for r in range(1, settled + 1):
        fin = ledger.finalization(r)
        assert fin is not None, f"round {r} was not finalized"
        # every blob the round names landed on IPFS, those added while the node was down included
        named = [c.cid for c in ledger.commitments(r)] + [fin.aggregate_cid, fin.rewards_cid]
        absent = [cid for cid in named if not pinned.has(cid)]
        assert not absent, f"round {r}: not on IPFS: {absent}"
        commits = [c.member for c in ledger.commitments(r)]
        assert sorted(commits) == sorted(members), f"round {r}: one commitment per member, got {commits}"
        voters = [v.member for v in ledger.votes(r)]
        assert len(voters) == len(set(voters)) and set(voters) <= members, f"round {r}: double vote {voters}"
        assert fin.excluded == [] or list(fin.excluded) == [], f"round {r}: honest peers excluded {fin.excluded}"
        for p in fed.peers:
            rec = _records(p)[r]
            assert rec["phase"] == Phase.FINALIZED.value, (p.name, r, rec["phase"])
            assert rec.get("digest") == fin.digest.hex(), f"round {r}: {p.name} computed another digest"
    assert ledger.current_round() > settled
    pinned.close()


def test_simultaneous_votes_the_finalizing_one_has_enough_gas(tmp_path):
    """Two of three members send their votes before either is mined (anvil's automine off, one block for both):
    both were estimated against a state without the other vote, so the one mined second finalizes the round
    against the estimate. With the peer's vote transaction both are mined and the round finalizes."""
    keys = dev_accounts()
    with start_anvil(log_path=tmp_path / "anvil.log") as node:
        deployed = deploy_governed_federation(node.rpc_url, _config(keys[1:4]), keys[0].private_key)
        members = [FederationLedger(node.rpc_url, deployed.address, k.private_key, deploy_block=deployed.deploy_block)
                   for k in keys[1:4]]
        for i, m in enumerate(members):
            m.commit(1, bytes([i + 1]) * 32, f"bafkreiupdate{i}", 10)
        root = b"\x01" * 32
        digest = vote_digest(AGG, root, [])
        results: dict[int, object] = {}

        def vote(i: int) -> None:
            try:
                results[i] = send_time_dependent(vote_tx(members[i], 1, AGG, CID_AGG, root, CID_REWARDS, [], digest),
                                                 vote_gas(0))
            except Exception as exc:  # noqa: BLE001 - any outcome is recorded and asserted below
                results[i] = exc

        _rpc(node.rpc_url, "evm_setAutomine", [False])
        threads = [threading.Thread(target=vote, args=(i,), daemon=True) for i in (0, 1)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + 20
        while int(_rpc(node.rpc_url, "txpool_status", [])["pending"], 16) < 2:
            assert time.monotonic() < deadline, f"both votes should be pending; results so far: {results}"
            time.sleep(0.05)
        _rpc(node.rpc_url, "evm_mine", [])
        for t in threads:
            t.join(30)
        receipts = [results.get(i) for i in (0, 1)]
        assert not [r for r in receipts if isinstance(r, Exception) or r is None], receipts
        assert sum(r.finalized for r in receipts) == 1
        assert members[0].finalization(1) is not None


def test_collect_waits_for_a_restarting_ipfs_node_instead_of_excluding(tmp_path):
    """Without a gossip copy, a committed blob is fetched from IPFS. While the node is down (restarting) the
    collector waits for it (retry with backoff) instead of excluding an honest peer — which would make this
    peer vote another digest than the peers that had gossip copies. A CID the (live) node does not hold still
    becomes an exclusion without waiting."""
    import hashlib
    import io

    from consensus import Commitment
    from peer.loop.collect import collect_updates
    from peer.loop.log import NodeLog
    from peer.loop.retry import ReachableBlobStore, Retrier

    lines = io.StringIO()
    retry = Retrier(NodeLog("0x" + "00" * 20, json_mode=True, stream=lines), sleep=time.sleep,
                    should_stop=lambda: False, base_delay=0.2, max_delay=1.0, attempts=30)
    node = start_ipfs(api_port=free_port(), repo_dir=tmp_path / "ipfs", offline=True)
    restarted: list[IpfsProcess] = []
    try:
        raw = IpfsBlobStore(node.api_url, timeout=3, retries=1, backoff=0.1)
        blob = b"sealed update of an honest peer"
        commit = Commitment("0x" + "11" * 20, hashlib.sha256(blob).digest(), raw.add(blob), 10, round=1)
        node.stop()
        _wait_port_free(node.api_port)

        def restart_after_first_retry() -> None:
            deadline = time.monotonic() + 30
            while '"phase": "retry"' not in lines.getvalue() and time.monotonic() < deadline:
                time.sleep(0.05)
            restarted.append(start_ipfs(api_port=node.api_port, repo_dir=node.repo_dir, offline=True))

        helper = threading.Thread(target=restart_after_first_retry, daemon=True)
        helper.start()
        updates, report = collect_updates(1, [commit], unseal=lambda sealed, sender, r: sealed,
                                          blobstore=ReachableBlobStore(raw, retry, round=1))
        helper.join(40)
        assert restarted, "the helper did not restart the node"
        assert updates[0].update == blob, f"honest blob excluded while IPFS restarted: {report.rejected}"
        assert report.source == {commit.member: "ipfs"}

        unknown_cid = "bafkreiemqpndzewx4bioklzfvhtiegsfny5fxuc3nkjk2vmcpjxiammsti"
        missing = Commitment("0x" + "22" * 20, b"\x00" * 32, unknown_cid, 1, round=1)
        started = time.monotonic()
        updates, report = collect_updates(1, [missing], unseal=lambda sealed, sender, r: sealed,
                                          blobstore=ReachableBlobStore(raw, retry, round=1))
        assert updates[0].update is None and missing.member in report.rejected
        assert time.monotonic() - started < 15, "a CID the node does not hold must not be retried for long"
        raw.close()
    finally:
        node.stop()
        for n in restarted:
            n.stop()


def test_a_vote_that_would_revert_is_refused_before_sending(tmp_path):
    """The vote is estimated first (with `vote_gas` as a floor), so a doomed vote — here a second vote of the
    same member — surfaces as its contract error without a mined, gas-paying failed transaction."""
    keys = dev_accounts()
    with start_anvil(log_path=tmp_path / "anvil.log") as node:
        deployed = deploy_governed_federation(node.rpc_url, _config(keys[1:4]), keys[0].private_key)
        members = [FederationLedger(node.rpc_url, deployed.address, k.private_key, deploy_block=deployed.deploy_block)
                   for k in keys[1:4]]
        for i, m in enumerate(members):
            m.commit(1, bytes([i + 1]) * 32, f"bafkreiupdate{i}", 10)
        root = b"\x01" * 32
        digest = vote_digest(AGG, root, [])
        send = vote_tx(members[0], 1, AGG, CID_AGG, root, CID_REWARDS, [], digest)
        first = send_time_dependent(send, vote_gas(0))
        assert first.finalized is False
        nonce = members[0].w3.eth.get_transaction_count(keys[1].address)
        with pytest.raises(AlreadyVoted):
            send_time_dependent(send, vote_gas(0))
        assert members[0].w3.eth.get_transaction_count(keys[1].address) == nonce, "no transaction was sent"
