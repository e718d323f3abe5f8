"""Commitment-mismatch evidence end to end on anvil: a member gossips a signed envelope naming update A but
commits update B on chain; the collecting peer writes `<state>/evidence/<round>-<member>-mismatch.json`
(peer.loop.collect + peer.net.equivocation_log) and a third party slashes the member with
`fedledger gov slash --evidence FILE`."""
from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from fedledger.cli import app
from helpers.governance import deploy_governed, envelope
from ledger_tools.chain.signed_tx import fetch
from peer.loop.collect import collect_updates
from peer.net.envelope import Envelope
from peer.net.equivocation_log import save_mismatch_evidence
from peer.net.slash_evidence import FORMAT_MISMATCH, EvidenceFileError, load

A, B, C = b"\x0a" * 32, b"\x0b" * 32, b"\x0c" * 32


class _Gossip:
    """The envelopes a gossip node accepted for a round (no blobs: collection falls back to the blob store)."""

    def __init__(self, envelopes: list[Envelope]) -> None:
        self._envelopes = envelopes

    def envelopes(self, round: int) -> list[Envelope]:
        return [e for e in self._envelopes if e.round == round]

    def has_blob(self, update_hash: bytes, *, sender: str | None = None) -> bool:
        return False

    def blob(self, update_hash: bytes, blob_sha256: bytes | None = None, *, sender: str | None = None) -> None:
        return None

    def wait_for(self, predicate, timeout: float) -> bool:
        return predicate()


def test_gossip_a_commit_b_is_saved_and_slashed_by_a_third_party(anvil, dev_keys, tmp_path: Path) -> None:
    g = deploy_governed(anvil.rpc_url, dev_keys)
    cheat, honest, third = g.accounts[1], g.accounts[2], g.outsiders[1]
    r = g.ledger.current_round()
    g.members[1].commit(r, B, "bafkreicommitted", 100)
    g.members[2].commit(r, C, "bafkreihonest", 100)
    gossip = _Gossip([Envelope.from_bytes(envelope(g, cheat, r, A)), Envelope.from_bytes(envelope(g, honest, r, C))])

    commitments = g.ledger.commitments(r)
    _, report = collect_updates(r, commitments, unseal=lambda *a: b"", gossip=gossip, gossip_wait=0)
    assert report.equivocations == {cheat.address: "0x" + A.hex()}
    evidence = tmp_path / "state" / "evidence"
    committed = {c.member: c.update_hash for c in commitments}
    tx_of = {c.member: c.tx_hash for c in commitments}
    (path,) = save_mismatch_evidence(evidence, report.mismatched, committed,
                                     lambda member: fetch(g.ledger.w3, tx_of[member]))
    assert path == evidence / f"{r}-{cheat.address}-mismatch.json"
    assert save_mismatch_evidence(evidence, report.mismatched, committed) == []  # written once
    assert len(list((evidence / "envelopes").glob("*.env"))) == 1  # for `audit verify --evidence`
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["member"], doc["round"], doc["committed"]) == (FORMAT_MISMATCH, cheat.address, r,
                                                                               "0x" + B.hex())
    assert doc["federation"] == g.ledger.address and doc["chain_id"] == g.ledger.chain_id
    ev = load(path)
    assert len(ev.proofs) == 1 and ev.commit_tx is not None and ev.commit_tx.commit_call() == (r, B)

    res = CliRunner().invoke(app, ["gov", "slash", "--evidence", str(path), "--rpc", g.rpc_url,
                                   "--governor", g.governor.address, "--key", third.private_key])
    assert res.exit_code == 0, (res.output, res.exception)
    assert f"round {r}" in res.output and "no longer a member" in " ".join(res.output.split())
    assert cheat.address not in g.ledger.members() and honest.address in g.ledger.members()


def test_only_envelopes_contradicting_a_commitment_are_saved(tmp_path: Path) -> None:
    from eth_account import Account

    acct = Account.create()
    env = Envelope.create(acct, federation="0x" + "11" * 20, chain_id=31337, round=4, update_hash=A, cid="bafkreix",
                          wrapped_keys=b"\x07" * 10, blob_sha256=b"\x33" * 32, blob_size=10)
    assert save_mismatch_evidence(tmp_path, [env], {}) == []                   # no commitment: nothing to prove
    assert save_mismatch_evidence(tmp_path, [env], {acct.address: A}) == []    # honest
    (path,) = save_mismatch_evidence(tmp_path, [env], {acct.address: B})
    assert load(path).proofs[0].update_hash == A
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert save_mismatch_evidence(blocked / "evidence", [env], {acct.address: B}) == []  # unwritable: logged only


def test_a_commit_tx_that_proves_nothing_is_refused_before_sending(anvil, dev_keys, tmp_path: Path) -> None:
    """A file whose commit transaction is another member's, another round's or the envelope's own update is
    refused in one line by `load` (the governor would revert it); no transaction: `gov slash` reads it on chain."""
    from peer.net.slash_evidence import mismatch_json

    g = deploy_governed(anvil.rpc_url, dev_keys)
    cheat, honest = g.accounts[1], g.accounts[2]
    r = g.ledger.current_round()
    g.members[1].commit(r, B, "bafkreicommitted", 100)
    g.members[2].commit(r, C, "bafkreihonest", 100)
    tx = {c.member: fetch(g.ledger.w3, c.tx_hash) for c in g.ledger.commitments(r)}
    cases = [(envelope(g, cheat, r, A), tx[honest.address], "not by the envelope's sender"),
             (envelope(g, cheat, r + 1, A), tx[cheat.address], "commits round"),
             (envelope(g, cheat, r, B), tx[cheat.address], "no mismatch")]
    for i, (env, commit, message) in enumerate(cases):
        path = tmp_path / f"{i}.json"
        path.write_text(json.dumps(mismatch_json(Envelope.from_bytes(env), commit_tx=commit)))
        try:
            load(path)
        except EvidenceFileError as exc:
            assert message in str(exc)
        else:
            raise AssertionError(f"case {i} was accepted")
