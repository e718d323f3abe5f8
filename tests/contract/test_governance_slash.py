"""Stake and slashing on anvil: a third party slashes a member from its signed gossip envelopes (the signed
fixed-size header each envelope's EIP-191 signature covers, checked on chain with ecrecover) and earns the
reporter share: two envelopes of one round naming different updates (equivocation), or one naming another update
than the member committed on the ledger. Replays, forgeries, other federations or chains, non-member signers and
honest commitments revert with named errors; stake leaves only after the delay. (The commit transaction as proof:
tests/contract/test_slash_commit_tx.py.)"""
from __future__ import annotations

import pytest
from web3.logs import DISCARD

from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, oz_tree
from helpers.governance import ETH, TEST_GOV, Governed, deploy_governed, envelope, proof, staked_federation
from ledger_tools.chain import NotMember
from ledger_tools.chain.governance import (
    AlreadySlashed,
    CommitMatches,
    InvalidSignature,
    NotCommitted,
    NotEquivocation,
    NothingToWithdraw,
    WithdrawLocked,
    WrongChain,
    WrongFederation,
)
from ledger_tools.chain.signed_tx import SignedTx, commit_tx
from peer.net.envelope import Envelope

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


@pytest.fixture
def staked(anvil, dev_keys) -> Governed:
    return staked_federation(anvil.rpc_url, dev_keys)


def _balance(g: Governed, address: str) -> int:
    return g.ledger.w3.eth.get_balance(address)


def _offence(g: Governed, tx_hash: str) -> int:
    raw = g.ledger.w3.eth.get_transaction_receipt(tx_hash)
    return g.governor.contract.events.Slashed().process_receipt(raw, errors=DISCARD)[0]["args"]["offence"]


def test_third_party_slashes_equivocation(staked: Governed) -> None:
    cheat, reporter = staked.outsiders[0], staked.outsiders[1]
    a = proof(staked, cheat, 1, b"\x01" * 32)
    b = proof(staked, cheat, 1, b"\x02" * 32)
    before = _balance(staked, reporter.address)
    receipt = staked.gov_as(reporter).slash_equivocation(a, b)
    raw = staked.ledger.w3.eth.get_transaction_receipt(receipt.tx_hash)
    fee = raw["gasUsed"] * raw["effectiveGasPrice"]
    assert (receipt.member, receipt.round, receipt.amount, receipt.reward, receipt.removed) == (
        cheat.address, 1, 2 * ETH, 2 * ETH // 10, True)
    assert _offence(staked, receipt.tx_hash) == 1
    gained = _balance(staked, reporter.address) - before
    assert gained == 2 * ETH // 10 - fee
    assert cheat.address not in staked.ledger.members()
    assert staked.governor.stake_of(cheat.address).amount == 0
    assert staked.governor.slashed_pool() == 2 * ETH - 2 * ETH // 10
    with pytest.raises(AlreadySlashed):  # the same proof again, in either order
        staked.gov_as(reporter).slash_equivocation(a, b)
    with pytest.raises(AlreadySlashed):
        staked.gov_as(reporter).slash_equivocation(b, a)
    with pytest.raises(NotMember):  # slashing twice: another round's proof finds nothing left to take
        staked.gov_as(reporter).slash_equivocation(proof(staked, cheat, 2, b"\x01" * 32),
                                                   proof(staked, cheat, 2, b"\x02" * 32))
    pool_before = staked.ledger.balance()
    staked.governor.forward_slashed()
    assert staked.ledger.balance() == pool_before + 2 * ETH - 2 * ETH // 10


def test_unstaked_bootstrap_member_is_removed(staked: Governed) -> None:
    cheat = staked.accounts[2]
    r = staked.gov_as(staked.outsiders[1]).slash_equivocation(proof(staked, cheat, 3, b"\x01" * 32),
                                                              proof(staked, cheat, 3, b"\x02" * 32))
    assert (r.amount, r.removed) == (0, True)
    assert cheat.address not in staked.ledger.members()


def _with(p: tuple, **changes: object) -> tuple:
    fields = ["federation", "chain_id", "round", "sender", "update_hash", "cid_hash", "rest_hash", "r", "s", "v"]
    return tuple(changes.get(name, value) for name, value in zip(fields, p, strict=True))


def test_hostile_evidence(staked: Governed) -> None:
    cheat, reporter = staked.accounts[1], staked.gov_as(staked.outsiders[1])
    good = proof(staked, cheat, 1, b"\x01" * 32)
    other = proof(staked, cheat, 1, b"\x02" * 32)
    with pytest.raises(NotEquivocation):  # the same update twice (other wrapped keys: another signed body)
        reporter.slash_equivocation(good, proof(staked, cheat, 1, b"\x01" * 32, keys=b"\x08" * 10))
    with pytest.raises(NotEquivocation):  # different rounds
        reporter.slash_equivocation(good, proof(staked, cheat, 2, b"\x02" * 32))
    with pytest.raises(NotEquivocation):  # different senders
        reporter.slash_equivocation(good, proof(staked, staked.accounts[2], 1, b"\x02" * 32))
    with pytest.raises(WrongFederation):  # signed for another federation
        reporter.slash_equivocation(good, proof(staked, cheat, 1, b"\x02" * 32, federation=staked.governor.address))
    with pytest.raises(WrongFederation):  # ... or relabelled as this one's after signing
        reporter.slash_equivocation(_with(good, federation=staked.governor.address), other)
    with pytest.raises(WrongChain):  # signed for another chain id
        reporter.slash_equivocation(proof(staked, cheat, 1, b"\x02" * 32, chain_id=1), good)
    with pytest.raises(InvalidSignature):  # update hash changed after signing: recovers to another address
        reporter.slash_equivocation(good, _with(other, update_hash=b"\x03" * 32))
    with pytest.raises(InvalidSignature):  # wrapped keys / blob fields changed after signing
        reporter.slash_equivocation(good, _with(other, rest_hash=b"\x04" * 32))
    with pytest.raises(InvalidSignature):  # cid changed after signing
        reporter.slash_equivocation(good, _with(other, cid_hash=b"\x05" * 32))
    with pytest.raises(InvalidSignature):  # the round relabelled (both envelopes, so they still pair)
        reporter.slash_equivocation(_with(good, round=9), _with(other, round=9))
    forged = proof(staked, staked.outsiders[1], 1, b"\x02" * 32)
    with pytest.raises(InvalidSignature):  # someone else's signature under the member's name
        reporter.slash_equivocation(good, _with(other, r=forged[7], s=forged[8], v=forged[9]))
    high_s = (SECP256K1_N - int.from_bytes(other[8], "big")).to_bytes(32, "big")
    with pytest.raises(InvalidSignature):  # the malleable high-s twin of a valid signature
        reporter.slash_equivocation(good, _with(other, s=high_s, v=55 - other[9]))
    outsider = staked.outsiders[2]
    with pytest.raises(NotMember):  # a validly signed pair from a non-member
        reporter.slash_equivocation(proof(staked, outsider, 1, b"\x01" * 32), proof(staked, outsider, 1, b"\x02" * 32))
    assert cheat.address in staked.ledger.members()
    reporter.slash_equivocation(good, other)  # the genuine pair still slashes
    assert cheat.address not in staked.ledger.members()


def test_proof_is_the_gossiped_envelope(staked: Governed) -> None:
    """What peers gossip is what the contract verifies: the header of a real envelope, wrapped keys of any size."""
    cheat = staked.accounts[3]
    big = proof(staked, cheat, 1, b"\x01" * 32, keys=bytes(range(256)) * 40)
    env = Envelope.from_bytes(envelope(staked, cheat, 1, b"\x02" * 32, keys=b""))
    env.verify()
    r = staked.gov_as(staked.outsiders[1]).slash_equivocation(big, proof(staked, cheat, 1, b"\x02" * 32, keys=b""))
    assert r.member == cheat.address and r.removed


def test_cross_federation_replay(staked: Governed, anvil, dev_keys) -> None:
    """Evidence against a member of one federation does not slash it in another it also belongs to."""
    second = deploy_governed(anvil.rpc_url, dev_keys)
    cheat = staked.accounts[0]
    a, b = proof(staked, cheat, 1, b"\x01" * 32), proof(staked, cheat, 1, b"\x02" * 32)
    with pytest.raises(WrongFederation):
        second.gov_as(second.outsiders[1]).slash_equivocation(a, b)
    with pytest.raises(WrongFederation):  # the envelope is checked first; the commit transaction alike below
        second.gov_as(second.outsiders[1]).slash_commit_mismatch(a, SignedTx(b"\x02\xc0", 0, b"\1" * 32, b"\1" * 32))
    staked.gov_as(staked.outsiders[1]).slash_equivocation(a, b)


def test_commit_mismatch(staked: Governed) -> None:
    """An envelope naming another update than its sender's own signed commit transaction for that round slashes
    it; the honest case, another round, another member's transaction and a replay revert with named errors."""
    cheat, honest, reporter = staked.outsiders[0], staked.accounts[0], staked.outsiders[1]
    round_ = staked.ledger.current_round()
    staked.ledger.with_account(cheat.private_key).commit(round_, b"\x0c" * 32, "bafkreicommitted", 100)
    staked.members[0].commit(round_, b"\x0d" * 32, "bafkreihonest", 100)
    cheat_tx = commit_tx(staked.ledger, cheat.address, round_)
    honest_tx = commit_tx(staked.ledger, honest.address, round_)
    assert cheat_tx.commit_call() == (round_, b"\x0c" * 32) and cheat_tx.signer() == cheat.address
    slasher = staked.gov_as(reporter)
    with pytest.raises(CommitMatches):  # the envelope names what it committed: honest
        slasher.slash_commit_mismatch(proof(staked, honest, round_, b"\x0d" * 32), honest_tx)
    with pytest.raises(NotCommitted):  # the transaction commits another round than the envelope's
        slasher.slash_commit_mismatch(proof(staked, honest, round_ + 1, b"\x0e" * 32), honest_tx)
    with pytest.raises(InvalidSignature):  # another member's commit transaction
        slasher.slash_commit_mismatch(proof(staked, staked.accounts[2], round_, b"\x0e" * 32), honest_tx)
    with pytest.raises(AlreadySlashed):  # round 0 is never a ledger round (its bit is pre-set at admission)
        slasher.slash_commit_mismatch(proof(staked, honest, 0, b"\x0e" * 32), honest_tx)
    with pytest.raises(InvalidSignature):  # the committed hash pasted into a signed header
        slasher.slash_commit_mismatch(_with(proof(staked, honest, round_, b"\x0e" * 32), update_hash=b"\x0d" * 32),
                                      honest_tx)
    before = _balance(staked, reporter.address)
    bad = proof(staked, cheat, round_, b"\x0e" * 32)
    r = slasher.slash_commit_mismatch(bad, cheat_tx)
    raw = staked.ledger.w3.eth.get_transaction_receipt(r.tx_hash)
    assert (r.member, r.round, r.amount, r.reward, r.removed) == (cheat.address, round_, 2 * ETH, 2 * ETH // 10, True)
    assert _offence(staked, r.tx_hash) == 2
    assert _balance(staked, reporter.address) - before == 2 * ETH // 10 - raw["gasUsed"] * raw["effectiveGasPrice"]
    assert cheat.address not in staked.ledger.members()
    with pytest.raises(AlreadySlashed):  # the same proof twice
        slasher.slash_commit_mismatch(bad, cheat_tx)
    with pytest.raises(AlreadySlashed):  # one slash per member and round, whatever the offence
        slasher.slash_equivocation(bad, proof(staked, cheat, round_, b"\x0c" * 32))


def test_withdraw_during_live_round(staked: Governed) -> None:
    leaver = staked.outsiders[0]
    members = staked.members + [staked.ledger.with_account(leaver.private_key)]
    round_ = staked.ledger.current_round()
    for i, m in enumerate(members):
        m.commit(round_, bytes([i + 1]) * 32, f"bafkreiupdate{i}", 100)
    tree = oz_tree(round_, {leaver.address: ETH // 2})
    members[0].vote(round_, AGG, CID_AGG, tree.root, CID_REWARDS, [])
    staked.gov_as(leaver).leave()  # mid-round: it stops counting, its stake is locked
    with pytest.raises(WithdrawLocked):
        staked.gov_as(leaver).withdraw()
    assert leaver.address not in staked.ledger.members()
    finalized = False
    for m in members[1:4]:
        finalized = m.vote(round_, AGG, CID_AGG, tree.root, CID_REWARDS, []).finalized or finalized
        if finalized:
            break
    assert finalized and staked.ledger.current_round() == round_ + 1
    # rewards earned before leaving stay claimable
    leaver_ledger = staked.ledger.with_account(leaver.private_key)
    leaver_ledger.claim([round_], [ETH // 2], [tree.proof(leaver.address)])
    staked.advance(TEST_GOV.withdraw_delay + 1)
    before = _balance(staked, leaver.address)
    staked.gov_as(leaver).withdraw()
    assert _balance(staked, leaver.address) > before + 2 * ETH - ETH // 100
    with pytest.raises(NothingToWithdraw):
        staked.gov_as(leaver).withdraw()
