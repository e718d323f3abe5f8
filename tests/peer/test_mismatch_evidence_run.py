"""Commitment-mismatch evidence with real `fedledger peer run` processes on anvil + IPFS: a member that commits
update B but gossips a signed envelope naming update A (`--attack equivocate`) is written up by the honest peers
as `<state>/evidence/<round>-<member>-mismatch.json`, and a third party (no member) slashes it with
`fedledger gov slash --evidence FILE` before it commits again."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from devnet.anvil import dev_accounts
from fedledger.cli import app
from helpers.peer_proc import PeerProcess
from ledger_tools.chain import FederationLedger
from peer.net.slash_evidence import FORMAT_MISMATCH


def test_equivocating_peer_is_written_up_and_slashed(local_federation) -> None:
    fed = local_federation(4, rule="median", f=1, partition="iid", commit_period=60, vote_period=30)
    cheat = fed.peers[3]
    procs = [PeerProcess(p.config_path, "--max-rounds", "1").start() for p in fed.peers[:3]]
    procs.append(PeerProcess(cheat.config_path, "--max-rounds", "1", "--attack", "equivocate").start())
    try:
        for p in procs:
            assert p.wait(timeout=240) == 0, p.tail()
    finally:
        for p in procs:
            p.kill()

    ledger = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    committed = {c.member: c.update_hash for c in ledger.commitments(1)}
    files = [p.state_dir / "evidence" / f"1-{cheat.address}-mismatch.json" for p in fed.peers[:3]]
    written = [f for f in files if f.exists()]
    assert written, [p.tail() for p in procs[:3]]
    doc = json.loads(written[0].read_text())
    assert (doc["format"], doc["member"], doc["round"]) == (FORMAT_MISMATCH, cheat.address, 1)
    assert doc["committed"] == "0x" + committed[cheat.address].hex() != doc["proof"]["update_hash"]
    named = {json.loads(f.read_text())["member"] for p in fed.peers
             for f in (p.state_dir / "evidence").glob("*-mismatch.json")}
    assert named == {cheat.address}  # nobody honest is written up

    third = dev_accounts()[9]  # an anvil account that is no member
    assert third.address not in ledger.members()
    res = CliRunner().invoke(app, ["gov", "slash", "--evidence", str(written[0]), "--rpc", fed.rpc_url,
                                   "--governor", fed.governor, "--key", third.private_key])
    assert res.exit_code == 0, (res.output, res.exception)
    assert "slashed" in res.output and "round 1" in res.output
    assert cheat.address not in ledger.members()
    assert {p.address for p in fed.peers[:3]} <= set(ledger.members())
