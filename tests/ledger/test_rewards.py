"""Contributors: rewards from the published trees, one claim for all rounds, paid exactly once, forgeries rejected."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from devnet.anvil import increase_time
from fedledger.cli import app
from fedledger.errors import UserError
from helpers.ledger_history import make_history, write_identity
from ledger_tools.audit import load_history
from ledger_tools.audit.rewards import build_claim, rewards_of
from ledger_tools.chain import AlreadyClaimed, InvalidProof, NotFinalized

runner = CliRunner()


@pytest.fixture
def history(anvil, ipfs_store, dev_keys, request):
    h = make_history(anvil.rpc_url, ipfs_store, dev_keys[0].private_key, n_members=4,
                     seed=abs(hash(request.node.name)) % 10_000, account_seed="rewards")
    for _ in range(2):
        h.run_round()
    return h


def _rewards(h, tmp_path, *args):
    return runner.invoke(app, ["rewards", "--rpc", h.rpc_url, "--contract", h.address, "--ipfs", h.store.api_url,
                               "--cache-dir", str(tmp_path / "cache"), *args])


def test_claim_pays_exactly_once(history, tmp_path):
    h = history
    m = h.members[2]
    expected = sum(dict(zip(o.peers, o.amounts))[m.address] for o in h.outcomes.values())
    assert expected > 0
    w3 = h.owner.w3
    res = _rewards(h, tmp_path, "claim", "--key", m.account.private_key, "--dry-run")
    assert res.exit_code == 0 and "would claim" in res.output and "gas" in res.output
    before = w3.eth.get_balance(m.address)
    res = _rewards(h, tmp_path, "claim", "--key", m.account.private_key)
    assert res.exit_code == 0, res.output
    tx = res.output.split("tx ")[1].split()[0]
    receipt = w3.eth.get_transaction_receipt(tx)
    after = w3.eth.get_balance(m.address)
    assert after - before == expected - receipt["gasUsed"] * receipt["effectiveGasPrice"]

    res = _rewards(h, tmp_path, "claim", "--key", m.account.private_key)  # a repeated claim is no error
    assert res.exit_code == 0, res.output
    assert "nothing to claim" in res.output and "already claimed" in " ".join(res.output.split())
    hist, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    view = rewards_of(hist, h.store, m.address)
    assert view.total_claimed == expected and view.total_claimable == 0
    call = build_claim([e.__class__(e.round, e.amount, e.proof, False) for e in view.entries])
    with pytest.raises(AlreadyClaimed):
        m.ledger.claim(*call.args())
    res = _rewards(h, tmp_path, "show", "--address", m.address, "--json")
    assert '"claimable_wei": "0"' in res.output


def test_forged_proofs_are_rejected_by_the_contract(history, tmp_path):
    h = history
    a, b = h.members[0], h.members[1]
    hist, _ = load_history(h.owner, cache_dir=tmp_path / "cache")
    mine = rewards_of(hist, h.store, a.address).entries[0]
    theirs = rewards_of(hist, h.store, b.address).entries[0]
    with pytest.raises(InvalidProof):  # inflated amount with a genuine proof
        a.ledger.claim([mine.round], [mine.amount + 1], [list(mine.proof)])
    with pytest.raises(InvalidProof):  # someone else's leaf and proof
        a.ledger.claim([theirs.round], [theirs.amount], [list(theirs.proof)])
    outsider = h.owner.with_account(h.auditor.account.private_key)
    with pytest.raises(InvalidProof):
        outsider.claim([mine.round], [mine.amount], [list(mine.proof)])
    a.ledger.claim([mine.round], [mine.amount], [list(mine.proof)])  # the genuine claim still works


def test_failed_round_and_strangers_get_clear_errors(history, tmp_path):
    h = history
    r = h.round
    increase_time(h.rpc_url, 3 * 3600)
    h.owner.close_failed_round(r)
    res = _rewards(h, tmp_path, "claim", "--key", h.members[0].account.private_key, "--rounds", str(r))
    assert isinstance(res.exception, UserError) and "failed" in res.exception.message
    with pytest.raises(NotFinalized):
        h.members[0].ledger.claim([r], [1], [[]])
    res = _rewards(h, tmp_path, "claim", "--key", h.auditor.account.private_key)
    assert res.exit_code == 0 and "nothing to claim" in res.output and "earned nothing" in res.output


def test_claim_with_state_dir_keystore(history, tmp_path):
    h = history
    m = h.members[3]
    state = tmp_path / "peer"
    write_identity(state, m.account.private_key, m.enc_key, "s3cret")
    password = tmp_path / "pw"
    password.write_text("wrong")
    res = _rewards(h, tmp_path, "claim", "--state-dir", str(state), "--password-file", str(password))
    assert isinstance(res.exception, UserError) and res.exception.message.startswith("wrong key password")
    res = _rewards(h, tmp_path, "show", "--state-dir", str(state), "--json")  # public identity.json: no password
    shown = json.loads(res.output)
    expected = sum(dict(zip(o.peers, o.amounts))[m.address] for o in h.outcomes.values())
    assert shown["account"] == m.address and int(shown["claimable_wei"]) == expected > 0
    password.write_text("s3cret")
    res = _rewards(h, tmp_path, "claim", "--state-dir", str(state), "--password-file", str(password))
    assert res.exit_code == 0, res.output
    assert all(m.ledger.is_claimed(m.address, r) for r in h.outcomes)
    res = _rewards(h, tmp_path, "claim", "--state-dir", str(tmp_path / "nobody"), "--password-file", str(password))
    assert isinstance(res.exception, UserError) and "no peer identity" in res.exception.message
