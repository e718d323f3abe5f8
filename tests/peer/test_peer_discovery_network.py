"""Real `fedledger peer run` processes on anvil + js-ipfs finding each other from the ledger (issue 11):
no bootstrap list at all, or a bootstrap peer that is down; and the pacing options (`min_round_interval`,
`max_rounds`) judged on the chain's own timestamps."""
from __future__ import annotations

import re

import pytest

from devnet.ports import free_port
from helpers.peer_proc import PeerProcess
from ledger_tools.chain import FederationLedger
from peer.net.gossip_key import gossip_peer_id

pytestmark = pytest.mark.timeout(420)

INTERVAL = 12  # s: min_round_interval


def _collect_line(proc: PeerProcess, r: int) -> dict:
    return proc.wait_for(lambda e: e["phase"] == "collect" and e["event"] == "done" and e["round"] == r, 5)


def _from_gossip(proc: PeerProcess, r: int) -> int:
    match = re.search(r"(\d+) gossip", _collect_line(proc, r)["message"])
    assert match, _collect_line(proc, r)
    return int(match.group(1))


def _run_to_exit(procs: list[PeerProcess], timeout: float) -> list[int]:
    try:
        for proc in procs:
            proc.start()
        return [proc.wait(timeout) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()


def test_no_bootstrap_peers_find_each_other_on_the_ledger_paced_and_bounded(local_federation) -> None:
    fed = local_federation(3, peer_overrides={"bootstrap": [], "max_rounds": 2, "min_round_interval": INTERVAL})
    procs = [PeerProcess(p.config_path) for p in fed.peers]
    codes = _run_to_exit(procs, 300)
    assert codes == [0, 0, 0], "\n\n".join(p.tail() for p in procs)

    for proc, peer in zip(procs, fed.peers):
        announced = proc.find(lambda e: e["phase"] == "announce")
        assert announced["event"] == "sent" and announced["message"] == peer.gossip_addr
        others = {p.gossip_addr for p in fed.peers} - {peer.gossip_addr}
        dialled = {a for e in proc.events if e["phase"] == "gossip" and e["event"] == "discovered"
                   for a in re.findall(r"/ip4/\S+?/p2p/\w+", e["message"])}
        assert dialled <= others and dialled, proc.tail()  # the later starters dial the earlier ones
        assert _from_gossip(proc, 2) == 2, proc.tail()     # both other updates came by gossip, not IPFS
        rounds = [e for e in proc.events if e["phase"] == "round"]
        assert [e["round"] for e in rounds] == [1, 2] and rounds[0]["peers"] == 2  # later, the first done leave
        stop = proc.find(lambda e: e["phase"] == "stop")
        assert stop["message"].startswith("max_rounds reached: round 2 settled")

    chain = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    assert chain.current_round() == 3 and chain.finalization(2) is not None  # nobody went on to round 3
    for r in (1, 2):
        start = chain.round_info(r).start
        commits = chain.commitments(r)
        assert len(commits) == 3
        for c in commits:  # no commit before the round opened + min_round_interval, by the chain's clock
            assert chain.w3.eth.get_block(c.block_number)["timestamp"] >= start + INTERVAL
    # each peer's log says why it waited
    assert all(p.find(lambda e: e["phase"] == "wait" and e["event"] == "pacing" and e["round"] == 2) for p in procs)


def test_peer_whose_only_bootstrap_peer_is_down_finds_the_others_on_the_ledger(local_federation) -> None:
    fed = local_federation(3, commit_period=150)
    nobody = gossip_peer_id(bytes([7]) * 32)
    dead = f"/ip4/127.0.0.1/tcp/{free_port()}/p2p/{nobody}"  # nobody listens there
    p0, p1, p2 = fed.peers
    # the lonely peer starts only after the others have announced, so it finds them on the ledger; round 1 waits
    # for its commit (the commit phase closes once all three committed), and round 2 (by then every peer has
    # been connected for a whole round) shows its update and theirs moving by gossip. No pacing sleep: the
    # start-up of the lonely peer (~40 s at load 14) is covered by round 1's 150 s commit window.
    flags = ["--max-rounds", "2"]
    procs = [PeerProcess(p0.config_path, *flags), PeerProcess(p1.config_path, *flags),
             PeerProcess(p2.config_path, *flags, "--bootstrap", dead)]
    try:
        for proc in procs[:2]:
            proc.start()
        for proc in procs[:2]:  # the others are on the ledger before the lonely peer starts
            proc.wait_for(lambda e: e["phase"] == "announce", 90)
        lonely = procs[2].start()
        codes = [proc.wait(240) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
    assert codes == [0, 0, 0], "\n\n".join(p.tail() for p in procs)
    discovered = lonely.find(lambda e: e["phase"] == "gossip" and e["event"] == "discovered")
    assert discovered and p0.gossip_addr in discovered["message"] and p1.gossip_addr in discovered["message"]
    published = lonely.find(lambda e: e["phase"] == "gossip" and e["event"] == "published" and e["round"] == 2)
    assert published and published["peers"] == 2, lonely.tail()
    assert _from_gossip(lonely, 2) == 2, lonely.tail()
    assert all(p.find(lambda e: e["phase"] == "finalized" and e["round"] == 1) for p in procs)
    assert all(p.find(lambda e: e["phase"] == "finalized" and e["round"] == 2) for p in procs)
