"""The auditor sees governance: a member admitted by proposal, another slashed from its signed envelopes, stakes,
and each round's tally held to the member set in force (real contracts on anvil, the audit CLI in-process)."""
from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from typer.testing import CliRunner

from devnet.anvil import extra_accounts
from fedledger.cli import app
from helpers.governance import proof
from helpers.ledger_history import _x25519, make_history
from ledger_tools.audit import load_history, verify_history
from ledger_tools.audit.governance import load_governance
from ledger_tools.audit.tally import tally_findings
from ledger_tools.chain import CommitClosed

runner = CliRunner()


def _cli(h, tmp_path, *args: str):
    argv = ["audit", "--rpc", h.rpc_url, "--contract", h.address, "--ipfs", h.store.api_url,
            "--cache-dir", str(tmp_path / "cache"), *args]
    return runner.invoke(app, argv, env={"COLUMNS": "400"})  # wide: no wrapped table cells


@pytest.fixture
def governed_history(anvil, ipfs_store, dev_keys):
    """4 bootstrap members; round 1; a fifth admitted by vote while round 2 is open; round 2 with the four;
    round 3 with five; one member slashed for equivocating in round 2; round 4 with the remaining four."""
    h = make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, n_members=4, seed=7,
                     account_seed="audit-governance")
    h.run_round()
    newcomer = extra_accounts(anvil.rpc_url, 1, seed="audit-governance/newcomer")[0]
    h.admit(newcomer, _x25519(b"audit-governance/newcomer"))
    h.run_round()
    h.run_round()
    cheat = h.members[1]
    a = proof(h.owner, cheat.account, 2, hashlib.sha256(b"one").digest())
    b = proof(h.owner, cheat.account, 2, hashlib.sha256(b"two").digest())
    reporter = h.governor.with_account(h.members[0].account.private_key)
    assert reporter.slash_equivocation(a, b).removed
    h.members.remove(cheat)
    h.run_round()
    return h, newcomer, cheat


def test_rounds_and_governance_show_admission_slash_and_stake(governed_history, tmp_path):
    h, newcomer, cheat = governed_history
    res = _cli(h, tmp_path, "rounds")
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "4 member(s) at deployment" in text and f"owned by its governor {h.governor.address}" in text
    assert "admitted" in text and "by proposal #1" in text
    assert "slashed" in text and "equivocation in round 2" in text and "by slashing" in text
    assert "staked" in text

    doc = json.loads(_cli(h, tmp_path, "governance", "--json").output)
    kinds = [(e["kind"], e["account"]) for e in doc["timeline"]]
    assert ("admitted", newcomer.address) in kinds and ("removed", cheat.address) in kinds
    assert ("slashed", cheat.address) in kinds and ("staked", newcomer.address) in kinds
    admitted = next(e for e in doc["timeline"] if e["kind"] == "admitted" and e["account"] == newcomer.address)
    removed = next(e for e in doc["timeline"] if e["kind"] == "removed")
    assert admitted["round"] == 2 and removed["round"] == 4  # the round open when each was executed
    assert doc["slashes"][0]["member"] == cheat.address and doc["slashes"][0]["round"] == 2
    assert doc["stakes_wei"][newcomer.address] == str(10**18)
    assert doc["proposals"][0]["kind"] == "admit" and doc["proposals"][0]["executed_block"]

    out = tmp_path / "report.html"
    res = _cli(h, tmp_path, "report", "--no-ipfs", "--out", str(out))
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert "<h2>Governance</h2>" in page and "by proposal #1" in page and "equivocation in round 2" in page


def test_verify_holds_each_tally_to_the_member_set_in_force(governed_history, tmp_path):
    h, newcomer, cheat = governed_history
    history, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    # round 2 (open at the admission) keeps its four members' weight, round 3 holds the newcomer's, round 4 no
    # longer the cheat's
    totals = {r: history.rounds[r].finalization.total_weight for r in (1, 2, 3, 4)}
    assert totals[2] == totals[1] and totals[3] > totals[2] and totals[4] < totals[3], totals
    assert all(history.rounds[r].total_weight_then == totals[r] for r in totals)
    assert newcomer.address not in {v.member for v in history.rounds[2].in_force}
    assert cheat.address in {v.member for v in history.rounds[3].in_force}
    assert cheat.address not in {v.member for v in history.rounds[4].in_force}
    assert all(v.was_member and v.counted == v.weight_then for r in totals for v in history.rounds[r].in_force)
    report = verify_history(history, store=h.store, unseal=h.auditor_unseal())
    assert report.ok, [f.line() for f in report.findings]
    assert not any(f.kind == "tally" for f in report.findings)

    # a tally that counted a non-member, or a total weight the member set does not add up to, is named
    rec = history.rounds[4]
    rec.in_force[0] = dataclasses.replace(rec.in_force[0], was_member=False)
    rec.total_weight_then = (rec.total_weight_then or 0) + 1
    lines = [f.line() for f in tally_findings(history, rec)]
    assert any(f"peer {rec.in_force[0].member}: tally: vote" in line and "was not a member then" in line
               for line in lines), lines
    assert any("but the members in force then weighed" in line for line in lines), lines
    assert any("but the members in force voted" in line for line in lines), lines


def test_governance_log_finds_the_governor_and_the_changes(governed_history, tmp_path):
    """The governor is found as the ledger's owner; its log names who executed what."""
    h, newcomer, _ = governed_history
    history, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    gov = load_governance(h.owner, history, cache_dir=tmp_path / "cache")
    assert gov.governor == h.governor.address
    changes = gov.membership_changes()
    assert [c.kind for c in changes] == ["admitted", "removed"]
    assert changes[0].account == newcomer.address


def test_an_admission_after_voting_began_leaves_the_round_as_it_was(anvil, ipfs_store, dev_keys):
    """Every member committed and one voted; then a member is admitted. The commit phase used to re-open (the member
    count grew) and the newcomer's commitment joined a round already being voted on; now the round keeps the four
    members it opened with: the newcomer's commit is refused, the round finalizes and verifies with four
    commitments, and nothing is named `commit-after-vote`."""
    h = make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, n_members=4, seed=9,
                     account_seed="late-commit")
    h.run_round()
    newcomer = extra_accounts(anvil.rpc_url, 1, seed="late-commit/newcomer")[0]

    def admit_and_commit() -> None:
        member = h.admit(newcomer, _x25519(b"late-commit/newcomer"))
        update = h.random_update()
        cid = h.store.add(h.sealed(update, member.address, h.round))
        with pytest.raises(CommitClosed):
            member.ledger.commit(h.round, hashlib.sha256(update).digest(), cid, 10)

    h.run_round(after_first_vote=admit_and_commit)
    h.run_round()  # the newcomer takes part from here
    history, _ = load_history(h.owner)
    assert history.rounds[2].commits_after_vote == [] and len(history.rounds[2].commits) == 4
    assert len(history.rounds[3].commits) == 5
    report = verify_history(history, store=h.store, unseal=h.auditor_unseal())
    assert report.ok, [f.line() for f in report.mismatches]
    assert not [f for f in report.findings if f.kind == "commit-after-vote"]


def test_each_round_is_checked_under_its_own_parameters():
    """Round parameters changed by vote apply from their effective round on; the tally's quorum and the
    re-derivation's rule are the round's own."""
    from ledger_tools.audit.history import LedgerHistory
    from ledger_tools.chain import LedgerParams

    first = LedgerParams("fedavg", 0, 0, 5000, 60, 60, 10**18, b"\0" * 32, b"\0" * 32, "bafk", 20, 1000, 0)
    h = LedgerHistory(chain_id=1, address="0x" + "11" * 20, params=dataclasses.replace(first, quorum_bps=7000))
    assert h.params_for(3) == h.params  # no change on record: the ledger's parameters
    h.first_params = first
    h.param_changes = [(4, {"quorum_bps": 6000, "rule": "median"}), (6, {"quorum_bps": 7000, "rule": "median"})]
    assert [h.params_for(r).quorum_bps for r in (1, 3, 4, 5, 6, 9)] == [5000, 5000, 6000, 6000, 7000, 7000]
    assert h.params_for(3).rule == "fedavg" and h.params_for(4).rule == "median"
