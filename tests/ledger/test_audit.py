"""The auditor against a real anvil + IPFS: honest histories verify; every kind of tampering is named precisely."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fedledger.cli import app
from fedledger.errors import UserError
from helpers.ledger_history import make_history, pay_wrong_peer_lie, wrong_model_lie
from ledger_tools.audit import load_history, verify_history
from ledger_tools.blobstore import verify_blob

runner = CliRunner()


def _cli(history, tmp_path, *args: str):
    from cryptography.hazmat.primitives import serialization

    key = history.auditor.enc_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                serialization.NoEncryption())
    key_file = tmp_path / "auditor.key"
    key_file.write_text(key.hex())
    argv = ["audit", "--rpc", history.rpc_url, "--contract", history.address, "--ipfs", history.store.api_url,
            "--cache-dir", str(tmp_path / "cache"), *args]
    argv = [a.replace("{KEY}", str(key_file)) for a in argv]
    return runner.invoke(app, argv)


@pytest.fixture
def make(anvil, ipfs_store, dev_keys, request):
    def _make(**kw):
        kw.setdefault("seed", abs(hash(request.node.name)) % 10_000)
        return make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, **kw)
    return _make


def test_honest_history_verifies_and_queries(make, tmp_path):
    h = make(n_members=4)
    for _ in range(3):
        h.run_round()
    res = _cli(h, tmp_path, "verify", "--key-file", "{KEY}")
    assert res.exit_code == 0, res.output
    assert "all 3 finalized round(s) verified" in res.output

    res = _cli(h, tmp_path, "rounds", "--json")
    rounds = json.loads(res.output)
    assert [r["status"] for r in rounds] == ["finalized"] * 3 + ["open"]
    assert all(len(r["commits"]) == 4 and r["gas_used"] > 0 for r in rounds[:3])
    assert rounds[0]["finalized"]["aggregate_hash"] == "0x" + h.outcomes[1].aggregate_hash.hex()

    res = _cli(h, tmp_path, "round", "2")
    assert res.exit_code == 0 and "finalized digest" in res.output
    detail = json.loads(_cli(h, tmp_path, "round", "2", "--json").output)
    assert detail["finalized"]["digest"] == "0x" + h.outcomes[2].digest.hex()

    member = h.members[1].address
    res = _cli(h, tmp_path, "peer", member, "--json")
    info = json.loads(res.output)
    assert info["commits"] == 3 and info["times_excluded"] == 0
    assert int(info["earned_wei"]) == sum(dict(zip(o.peers, o.amounts))[member] for o in h.outcomes.values())
    assert info["epsilon_total"] == pytest.approx(7.5)

    res = _cli(h, tmp_path, "export", "--format", "csv")
    assert res.output.count(",commit,") == 12 and res.output.count(",finalized,") == 3

    res = _cli(h, tmp_path, "verify", "--rounds", "2..3", "--key-file", "{KEY}", "--json")
    assert json.loads(res.output)["rounds_checked"] == [2, 3]


def test_blob_committed_under_another_hash_names_peer_and_round(make, tmp_path):
    h = make(n_members=4)
    h.run_round()
    cheat = h.members[2]
    other = h.sealed(h.random_update(), cheat.address, 2)  # a different update, properly sealed by the cheat
    # Peers used the gossiped update (the committed hash); the CID on chain points at another blob.
    h.run_round(commit_cid={cheat.address: h.store.add(other)})
    res = _cli(h, tmp_path, "verify", "--key-file", "{KEY}")
    assert res.exit_code == 1, res.output
    hist, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    report = verify_history(hist, store=h.store, unseal=h.auditor_unseal())
    bad = [f for f in report.mismatches if f.peer == cheat.address]
    assert (2, "update-hash-mismatch") in [(f.round, f.kind) for f in bad]
    assert {f.round for f in report.mismatches} == {2}
    assert {f.kind for f in report.mismatches if f.peer is None} >= {"aggregate-hash", "digest"}
    assert [r.verified for r in report.rounds[:2]] == [True, False]


class LyingStore:
    """An IPFS node that serves other bytes for one CID (the client must notice)."""

    def __init__(self, store, cid: str, data: bytes) -> None:
        self.store, self.cid, self.data = store, cid, data

    def cat(self, cid, expected_sha256=None, *, max_bytes=None):
        if cid == self.cid:
            verify_blob(cid, self.data, expected_sha256)
            return self.data
        return self.store.cat(cid, expected_sha256, max_bytes=max_bytes)


def test_replaced_blob_on_ipfs_names_peer_and_round(make, tmp_path):
    h = make(n_members=4)
    for _ in range(2):
        h.run_round()
    hist, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    victim = hist.rounds[1].commits[3]
    store = LyingStore(h.store, victim.cid, h.sealed(h.random_update(), victim.member, 1))
    report = verify_history(hist, store=store, unseal=h.auditor_unseal())
    assert not report.ok
    named = [f for f in report.mismatches if f.peer == victim.member]
    assert (named[0].round, named[0].kind) == (1, "blob-cid-mismatch")
    assert {f.round for f in report.mismatches} == {1}
    assert report.rounds[1].verified  # round 2 is checked from the chain's model, independently


def test_colluding_majority_wrong_aggregate_is_caught(make, tmp_path):
    h = make(n_members=4)
    h.run_round()
    honest = h.members[0]
    h.run_round(liars=h.members[1:], lie=wrong_model_lie(h))
    h.run_round()
    res = _cli(h, tmp_path, "verify", "--key-file", "{KEY}", "--json")
    assert res.exit_code == 1
    findings = json.loads(res.output)["findings"]
    kinds = {(f["round"], f["kind"]) for f in findings if f["severity"] == "mismatch"}
    assert kinds == {(2, "aggregate-hash"), (2, "digest")}
    dissent = [f for f in findings if f["kind"] == "dissenting-vote"]
    assert [(f["round"], f["peer"]) for f in dissent] == [(2, honest.address)]
    assert "aggregate" in dissent[0]["detail"]


def test_rewards_root_paying_wrong_peer_is_caught(make, tmp_path):
    h = make(n_members=4)
    thief = h.members[1]
    h.run_round(liars=h.members[1:], lie=pay_wrong_peer_lie(h, thief.address))
    hist, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    report = verify_history(hist, store=h.store, unseal=h.auditor_unseal())
    kinds = [(f.kind, f.peer) for f in report.mismatches]
    assert ("rewards-root", None) in kinds and ("digest", None) in kinds
    assert ("aggregate-hash", None) not in kinds
    per_peer = {f.peer: f.detail for f in report.mismatches if f.kind == "reward-amount"}
    # every member whose honest amount differs from the lie's (contribution scores may pay a member 0 honestly)
    honest_pay = {p.lower(): a for p, a in zip(h.outcomes[1].peers, h.outcomes[1].amounts)}
    expected = {m.address for m in h.members if honest_pay[m.address.lower()] > 0 or m is thief}
    assert set(per_peer) == expected
    assert f"pays {sum(h.outcomes[1].amounts)} wei" in per_peer[thief.address]


def test_expected_failures_are_one_clear_line(make, tmp_path, anvil):
    h = make(n_members=3)
    h.run_round()
    base = [sys.executable, "-m", "fedledger.cli", "audit", "--cache-dir", str(tmp_path / "c")]
    out = subprocess.run(base + ["--rpc", "http://127.0.0.1:9", "--contract", h.address, "rounds"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 3 and "cannot reach the Ethereum RPC" in out.stderr and "Traceback" not in out.stderr
    res = runner.invoke(app, ["audit", "--rpc", anvil.rpc_url, "--contract", "0x" + "12" * 20,
                              "--cache-dir", str(tmp_path / "c"), "rounds"])
    assert isinstance(res.exception, UserError) and "no contract at" in res.exception.message
    wrong = tmp_path / "wrong.key"
    wrong.write_text("11" * 32)
    res = runner.invoke(app, ["audit", "--rpc", anvil.rpc_url, "--contract", h.address, "--ipfs",
                              h.store.api_url, "--cache-dir", str(tmp_path / "c"), "verify", "--key-file", str(wrong)])
    assert isinstance(res.exception, UserError) and "belongs to no auditor" in res.exception.message


def test_cache_is_incremental_and_survives_a_new_chain(make, tmp_path):
    h = make(n_members=3)
    h.run_round()
    hist, first = load_history(h.owner, cache_dir=tmp_path / "cache")
    assert first.new_events > 0 and len(hist.finalized()) == 1
    h.run_round()
    hist, second = load_history(h.owner, cache_dir=tmp_path / "cache")
    assert second.from_block == first.to_block + 1 and not second.rebuilt
    assert len(hist.finalized()) == 2
    assert hist.rounds[1].commits == load_history(h.owner, cache_dir=tmp_path / "fresh")[0].rounds[1].commits


def _envelope(h, member, round_: int, update_hash: bytes, cid: str) -> bytes:
    from eth_account import Account

    from peer.net.envelope import Envelope

    env = Envelope.create(Account.from_key(member.account.private_key), federation=h.address,
                          chain_id=h.owner.w3.eth.chain_id, round=round_, update_hash=update_hash, cid=cid,
                          wrapped_keys=b"", blob_sha256=update_hash, blob_size=1, timestamp=1)
    return env.to_bytes()


def test_failed_round_state_dir_auditor_and_equivocation_evidence(make, tmp_path):
    """An auditor identity (--state-dir) registered on chain verifies; a failed round with commitments is listed
    and checked; a signed envelope contradicting a commitment is flagged; a wrong identity is one clear line."""
    from peer.crypto.identity import PeerIdentity

    h = make(n_members=3)
    password = tmp_path / "pw"
    password.write_text("audit-pw")
    auditor = PeerIdentity.create(tmp_path / "auditor", "audit-pw", scrypt_n=2**4)
    h.register_auditor(auditor.address, auditor.enc_public_key)  # by member vote: the deployer has no power
    h.run_round()
    h.fail_round()
    h.run_round()

    cheat = h.members[1]
    evidence = tmp_path / "evidence"
    evidence.mkdir()
    (evidence / "other.env").write_bytes(_envelope(h, cheat, 1, b"\x42" * 32, "bafkreiotherblob"))
    (evidence / "garbage.env").write_bytes(b"not an envelope")
    args = ["verify", "--state-dir", str(tmp_path / "auditor"), "--password-file", str(password)]
    res = _cli(h, tmp_path, *args, "--evidence", str(evidence))
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())  # rich wraps long lines
    assert "round 2: failed, no finalization, no claims" in text
    assert "all 2 finalized round(s) verified, 1 failed round(s) without finalization or claims" in text
    assert f"round 1 peer {cheat.address}: equivocation: gossiped update 0x42424242" in text
    assert "ignoring evidence garbage.env" in text
    report = json.loads(_cli(h, tmp_path, *args, "--json").output)
    assert (report["auditor"], report["failed_rounds_checked"]) == (auditor.address, [2])
    rounds = json.loads(_cli(h, tmp_path, "rounds", "--json").output)
    assert rounds[1]["status"] == "failed" and len(rounds[1]["commits"]) == 3 and rounds[1]["finalized"] is None

    stranger = PeerIdentity.create(tmp_path / "stranger", "audit-pw", scrypt_n=2**4)
    res = _cli(h, tmp_path, "verify", "--state-dir", str(tmp_path / "stranger"), "--password-file", str(password))
    assert isinstance(res.exception, UserError)
    assert res.exception.message == (f"{stranger.address} is not an auditor or member of federation {h.address}; "
                                     "its blobs can't be unsealed")
    password.write_text("wrong")
    res = _cli(h, tmp_path, *args)
    assert isinstance(res.exception, UserError) and res.exception.message.startswith("wrong key password")
