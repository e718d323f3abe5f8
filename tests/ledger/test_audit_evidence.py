"""Audit-grade evidence on a real small federation (anvil + IPFS): the HTML report's provenance and per-round
verify verdicts, the CSV export's columns, and rounds the reward pool could not pay (browser-free)."""
from __future__ import annotations

import csv
import io
import json
import re
from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from fedledger.cli import app
from helpers.ledger_history import make_history, wrong_model_lie
from ledger_tools.audit.export import CSV_COLUMNS

runner = CliRunner()
REWARD = 10**16
UTC_TIME = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC")


def _key_file(h, tmp_path):
    from cryptography.hazmat.primitives import serialization

    raw = h.auditor.enc_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
    path = tmp_path / "auditor.key"
    path.write_text(raw.hex())
    return str(path)


def _audit(h, tmp_path, *args: str):
    return runner.invoke(app, ["audit", *args, "--rpc", h.rpc_url, "--contract", h.address, "--ipfs",
                               h.store.api_url, "--cache-dir", str(tmp_path / "cache")])


def _late_vote(h, member, r: int) -> None:
    """`member` votes round `r`'s finalized outcome after it finalized (a recorded, weight-0 late vote)."""
    f = h.owner.finalizations()[-1]
    assert f.round == r
    receipt = member.ledger.vote(r, f.aggregate_hash, f.aggregate_cid, f.rewards_root, f.rewards_cid,
                                 sorted(f.excluded, key=lambda a: int(a, 16)))
    assert receipt.late


@pytest.fixture(scope="module")
def dry(anvil, ipfs, dev_keys, tmp_path_factory):
    """4 members funded for 1.5 rounds: round 1 paid in full (+ one late vote), round 2 paid short, round 3
    failed, round 4 paid nothing; member 0 then claims."""
    from ledger_tools.blobstore import IpfsBlobStore

    store = IpfsBlobStore(ipfs.api_url, timeout=30, retries=2, backoff=0.05)
    h = make_history(anvil.rpc_url, store, dev_keys[0].private_key, n_members=4, seed=11, account_seed="evidence",
                     reward_per_round_wei=REWARD, funding_wei=REWARD * 3 // 2)
    h.run_round()
    _late_vote(h, h.members[3], 1)
    h.run_round()
    h.fail_round()
    h.run_round()
    tmp = tmp_path_factory.mktemp("claim")
    res = runner.invoke(app, ["rewards", "claim", "--key", h.members[0].account.private_key, "--rpc", h.rpc_url,
                              "--contract", h.address, "--ipfs", h.store.api_url, "--cache-dir", str(tmp)])
    assert res.exit_code == 0, res.output
    return h


def test_rounds_flag_what_the_pool_could_not_pay(dry, tmp_path):
    res = _audit(dry, tmp_path, "rounds")
    assert res.exit_code == 0, res.output
    warning = [line for line in res.output.splitlines() if line.startswith("warning:")]
    table = res.output.split("warning:")[0]
    assert table.count("⚠") == 2 and "unpaid" in table and "short" in table  # rich may fold a marker's words
    assert len(warning) == 1, res.output  # one line
    assert "could not pay 2 finalized round(s) in full" in warning[0] and "round(s) 2, 4" in warning[0]
    assert "1 of them paid nothing" in warning[0]
    rounds = json.loads(_audit(dry, tmp_path, "rounds", "--json").output)
    assert [r["finalized"] and r["finalized"]["underpaid"] for r in rounds] == [False, True, None, True, None]
    assert [r["finalized"]["pool_wei"] for r in rounds if r["finalized"]] == [str(REWARD), str(REWARD // 2), "0"]
    detail = " ".join(_audit(dry, tmp_path, "round", "4").output.split())
    assert "less than the 0.010000 ETH a round should pay" in detail


def test_csv_has_rewards_claims_failures_times_weights_and_late_flag(dry, tmp_path):
    res = _audit(dry, tmp_path, "export", "--format", "csv")
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader(io.StringIO(res.output)))
    assert list(rows[0]) == CSV_COLUMNS
    kinds = {r["kind"] for r in rows}
    assert kinds == {"commit", "vote", "finalized", "failed", "reward", "claim"}
    for r in rows:
        if r["kind"] != "reward":  # rewards come from the trees; every on-chain row has its block and time
            assert int(r["block"]) > 0 and UTC_TIME.fullmatch(r["time_utc"]), r
    late = [r for r in rows if r["kind"] == "vote" and r["late"] == "true"]
    assert [(r["round"], r["address"], r["weight"]) for r in late] == [("1", dry.members[3].address, "0")]
    assert all(int(r["weight"]) > 0 for r in rows if r["kind"] == "vote" and r["late"] == "false")
    finals = {r["round"]: r for r in rows if r["kind"] == "finalized"}
    assert {k: v["underpaid"] for k, v in finals.items()} == {"1": "false", "2": "true", "4": "true"}
    for rnd in ("1", "2"):
        paid = sum(int(r["amount_wei"]) for r in rows if r["kind"] == "reward" and r["round"] == rnd)
        assert paid == int(finals[rnd]["amount_wei"]) > 0
        outcome = dry.outcomes[int(rnd)]
        assert {r["address"]: int(r["amount_wei"]) for r in rows if r["kind"] == "reward" and r["round"] == rnd} \
            == {a: x for a, x in zip(outcome.peers, outcome.amounts) if x}
    assert [r["round"] for r in rows if r["kind"] == "failed"] == ["3"]
    claims = [r for r in rows if r["kind"] == "claim"]
    assert {r["round"] for r in claims} == {"1", "2"} and {r["address"] for r in claims} == {dry.members[0].address}
    doc = json.loads(_audit(dry, tmp_path, "export").output)
    assert doc["underpaid_rounds"] == [2, 4] and doc["rounds"][0]["rewards"]


def test_report_states_provenance_and_verdicts(dry, tmp_path):
    h = dry
    out = tmp_path / "report.html"
    res = _audit(h, tmp_path, "report", "--out", str(out), "--key-file", _key_file(h, tmp_path))
    assert res.exit_code == 0, res.output
    assert "all checked rounds verified" in res.output
    page = out.read_text()
    prov = page.split("id='provenance'")[1].split("</table>")[0]
    p = h.owner.params()
    block = h.owner.w3.eth.block_number
    for label, value in [("chain id", str(h.owner.w3.eth.chain_id)), ("contract", h.address),
                         ("block height", f"{block} (events read up to this block)"),
                         ("tool version", f"fedledger {version('fedledger')}"), ("Ethereum RPC", h.rpc_url),
                         ("IPFS API", h.store.api_url), ("genesis model hash", "0x" + p.genesis_model_hash.hex()),
                         ("genesis model CID", p.genesis_model_cid),
                         ("model spec hash", "0x" + p.model_spec_hash.hex())]:
        assert f"<td>{label}</td><td class='mono'>{value}" in prov, label
    assert UTC_TIME.search(prov.split("generated at")[1])
    assert "run by `fedledger audit report` while generating" in page
    rounds = page.split("id='rounds'")[1].split("</table>")[0]
    row = {n: rounds.split(f"<tr><td>{n}</td>")[1].split("</tr>")[0] for n in (1, 2, 3, 4)}
    assert "<td class='ok'>✓</td>" in row[1] and "1 late" in row[1]
    assert "✓ failed: no finalization, no claims" in row[3]
    assert "⚠ paid short" in row[2] and "⚠ unpaid (pool empty)" in row[4]
    assert UTC_TIME.search(row[1]) and f"(block {h.owner.finalizations()[0].block_number})" in row[1]
    assert "id='underpaid'" in page and "round(s) 2, 4" in page
    assert "id='no-exclusions'" in page and "id='plot-exclusions'" not in page
    for f in h.owner.finalizations():  # CIDs in full
        assert f">{f.aggregate_cid}<" in page and f">{f.rewards_cid}<" in page
    votes = page.split("id='votes'")[1].split("</table>")[0]
    assert votes.count("<td class='warn'>late</td>") == 1
    assert "id='claims'" in page and h.members[0].address in page.split("id='claims'")[1]

    # the same verdicts from an earlier `audit verify --json`, and an unverified report saying so
    verdict = tmp_path / "verify.json"
    res = _audit(h, tmp_path, "verify", "--key-file", _key_file(h, tmp_path), "--json")
    assert res.exit_code == 0, res.output
    verdict.write_text(res.output)
    assert _audit(h, tmp_path, "report", "--out", str(out), "--verification", str(verdict)).exit_code == 0
    page = out.read_text()
    assert "read from verify.json" in page and f"verified up to block {block}" in page
    assert "<td class='ok'>✓</td>" in page.split("id='rounds'")[1].split("<tr><td>1</td>")[1].split("</tr>")[0]
    assert _audit(h, tmp_path, "report", "--out", str(out)).exit_code == 0
    assert "Not verified: no auditor key was given" in out.read_text()


def test_report_marks_a_mismatching_round(anvil, ipfs_store, dev_keys, tmp_path):
    h = make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, n_members=4, seed=12,
                     account_seed="evidence-lie")
    h.run_round()
    h.run_round(liars=h.members[1:], lie=wrong_model_lie(h))
    out = tmp_path / "report.html"
    res = _audit(h, tmp_path, "report", "--out", str(out), "--key-file", _key_file(h, tmp_path))
    assert res.exit_code == 0 and "MISMATCH" in res.output, res.output
    page = out.read_text()
    rounds = page.split("id='rounds'")[1]
    assert "<td class='ok'>✓</td>" in rounds.split("<tr><td>1</td>")[1].split("</tr>")[0]
    row2 = rounds.split("<tr><td>2</td>")[1].split("</tr>")[0]
    assert "<td class='bad'>✗ aggregate-hash, digest</td>" in row2
    assert "✗ 2 mismatch(es) in round(s) 2" in page
    findings = page.split("id='findings'")[1].split("</table>")[0]
    assert "aggregate-hash" in findings and "dissenting-vote" in findings
