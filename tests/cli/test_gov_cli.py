"""`fedledger gov …` and `fedledger peer stake|withdraw` against a governed federation on anvil: the admission
lifecycle by CLI, a slash from an evidence file by a third party, and one clear line for every revert."""
from __future__ import annotations

import json

from typer.testing import CliRunner

from fedledger.cli import app
from fedledger.errors import UserError
from helpers.governance import ETH, TEST_GOV, deploy_governed, envelope
from peer.net.envelope import decode_message
from peer.net.slash_evidence import FORMAT, evidence_json

runner = CliRunner()


def _run(g, argv: list[str], key: str | None = None):
    extra = ["--rpc", g.rpc_url, "--governor", g.governor.address]
    if key is not None:
        extra += ["--key", key]
    return runner.invoke(app, argv + extra)


def _ok(res) -> str:
    assert res.exit_code == 0 and res.exception is None, (res.output, res.exception)
    return res.output


def _refused(res, *words: str) -> str:
    assert isinstance(res.exception, UserError), (res.output, res.exception)
    message = res.exception.message
    assert "\n" not in message and all(w in message for w in words), message
    return message


def test_gov_cli_lifecycle_and_slash(anvil, dev_keys, tmp_path) -> None:
    g = deploy_governed(anvil.rpc_url, dev_keys)
    cand, third = g.outsiders[0], g.outsiders[1]
    m = [a.private_key for a in g.accounts]
    _ok(_run(g, ["peer", "stake", "--amount-eth", "1.5"], cand.private_key))
    out = _ok(_run(g, ["gov", "propose", "admit", "--account", cand.address, "--enc-key", "0x" + "42" * 32,
                       "--weight", "0.5", "--stake-eth", "1.5"], m[0]))
    assert "proposal 1 opened" in " ".join(out.split())
    for k in m[:3]:
        _ok(_run(g, ["gov", "vote", "1"], k))
    _refused(_run(g, ["gov", "vote", "1", "--against"], m[0]), "AlreadyVotedOnProposal", "already voted")
    _refused(_run(g, ["gov", "vote", "1"], cand.private_key), "NotMember")
    _refused(_run(g, ["gov", "execute", "1"], m[0]), "ProposalNotReady")
    _refused(_run(g, ["gov", "propose", "param", "--name", "pass_bps", "--value", "100"], m[0]), "InvalidProposal")
    _refused(_run(g, ["gov", "propose", "admit", "--account", third.address, "--enc-key", "0x" + "42" * 32],
                  dev_keys[0].private_key), "NotMember")  # the deployer has no say
    _refused(_run(g, ["gov", "propose", "param", "--name", "nope", "--value", "1"], m[0]), "unknown parameter")
    g.advance(TEST_GOV.voting_period + TEST_GOV.execution_delay + 1)
    _ok(_run(g, ["gov", "execute", "1"], third.private_key))
    assert cand.address in g.ledger.members()
    rows = json.loads(_ok(_run(g, ["gov", "list", "--json"])))
    assert [(r["id"], r["kind"], r["state"]) for r in rows] == [(1, "admit", "executed")]
    assert "admit" in _ok(_run(g, ["gov", "show", "1"]))
    _refused(_run(g, ["gov", "show", "9"]), "UnknownProposal")

    # the newcomer equivocates; a third party slashes it from an evidence file
    a = decode_message(envelope(g, cand, 2, b"\x01" * 32))
    b = decode_message(envelope(g, cand, 2, b"\x02" * 32))
    doc = evidence_json(a, b)
    assert doc["format"] == FORMAT and doc["member"] == cand.address
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(doc))
    out = _ok(_run(g, ["gov", "slash", "--evidence", str(path)], third.private_key))
    assert "slashed" in out and "no longer a member" in " ".join(out.split())
    assert cand.address not in g.ledger.members()
    _refused(_run(g, ["gov", "slash", "--evidence", str(path)], third.private_key), "AlreadySlashed")
    bad = dict(doc, round=7)
    path.write_text(json.dumps(bad))
    _refused(_run(g, ["gov", "slash", "--evidence", str(path)], third.private_key), "'round' says 7")
    (tmp_path / "a.bin").write_bytes(a.to_bytes())
    _refused(_run(g, ["gov", "slash", "--envelope", str(tmp_path / "a.bin"), "--envelope", str(tmp_path / "a.bin")],
                  third.private_key), "not an equivocation")

    # a bootstrap member leaves and withdraws after the delay
    _ok(_run(g, ["peer", "stake", "--amount-eth", "1"], m[3]))
    out = _ok(_run(g, ["peer", "withdraw"], m[3]))
    assert "left the federation" in out
    _refused(_run(g, ["peer", "withdraw"], m[3]), "WithdrawLocked")
    g.advance(TEST_GOV.withdraw_delay + 1)
    assert "withdrew 1 ETH" in _ok(_run(g, ["peer", "withdraw"], m[3]))
    assert g.governor.stake_of(g.accounts[3].address).amount == 0
    assert ETH  # amounts above are in ETH


def test_gov_cli_needs_governor_and_account(anvil) -> None:
    res = runner.invoke(app, ["gov", "vote", "1", "--rpc", anvil.rpc_url])
    _refused(res, "no governor address")
    res = runner.invoke(app, ["gov", "vote", "1", "--rpc", anvil.rpc_url, "--governor", "0x" + "12" * 20])
    _refused(res, "no account given")
    res = runner.invoke(app, ["gov", "list", "--rpc", "http://127.0.0.1:9", "--governor", "0x" + "12" * 20])
    _refused(res, "cannot reach")


def test_gov_cli_slashes_commit_mismatch(anvil, dev_keys, tmp_path) -> None:
    """A member commits one update and signs an envelope naming another: a third party slashes it from a
    fedledger-commit-mismatch/1 file without the commit transaction (the CLI reads it from the chain); the honest
    envelope and an envelope of a round the member did not commit in are refused in one line."""
    from peer.net.slash_evidence import mismatch_json

    g = deploy_governed(anvil.rpc_url, dev_keys)
    cheat, honest, third = g.accounts[1], g.accounts[2], g.outsiders[1]
    round_ = g.ledger.current_round()
    g.members[1].commit(round_, b"\x0c" * 32, "bafkreicommitted", 100)
    g.members[2].commit(round_, b"\x0d" * 32, "bafkreihonest", 100)
    (tmp_path / "honest.env").write_bytes(envelope(g, honest, round_, b"\x0d" * 32))
    _refused(_run(g, ["gov", "slash", "--envelope", str(tmp_path / "honest.env")], third.private_key),
             "CommitMatches")
    (tmp_path / "later.env").write_bytes(envelope(g, honest, round_ + 1, b"\x0d" * 32))
    _refused(_run(g, ["gov", "slash", "--envelope", str(tmp_path / "later.env")], third.private_key),
             "did not commit in round")
    path = tmp_path / "mismatch.json"
    path.write_text(json.dumps(mismatch_json(decode_message(envelope(g, cheat, round_, b"\x0e" * 32)),
                                             committed=b"\x0c" * 32)))
    out = _ok(_run(g, ["gov", "slash", "--evidence", str(path)], third.private_key))
    assert f"round {round_}" in out and "no longer a member" in " ".join(out.split())
    assert cheat.address not in g.ledger.members()
    _refused(_run(g, ["gov", "slash", "--evidence", str(path)], third.private_key), "AlreadySlashed")
