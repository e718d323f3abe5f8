"""Stake and slashing on anvil: a third party slashes an equivocating member from its signed gossip envelopes
(verified on chain with ecrecover over the exact wire bytes) and earns the reporter share; replays, forgeries,
other federations or chains and non-member signers revert with named errors; stake leaves only after the delay."""
from __future__ import annotations

import pytest

from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, oz_tree
from helpers.governance import ETH, TEST_GOV, Governed, deploy_governed, envelope
from ledger_tools.chain import NotMember
from ledger_tools.chain.governance import (
    AlreadySlashed,
    InvalidSignature,
    MalformedEnvelope,
    NotEquivocation,
    NothingToWithdraw,
    WithdrawLocked,
    WrongChain,
    WrongFederation,
)
from peer.net.envelope import SIGNATURE_LEN


@pytest.fixture
def staked(anvil, dev_keys) -> Governed:
    """4 bootstrap members and a fifth admitted by vote with a 2 ETH stake."""
    g = deploy_governed(anvil.rpc_url, dev_keys)
    cand = g.outsiders[0]
    g.gov_as(cand).stake(2 * ETH)
    g.pass_proposal(g.gov[0].propose_admit(cand.address, b"\x42" * 32, 1_000_000, 2 * ETH).proposal_id)
    return g


def _balance(g: Governed, address: str) -> int:
    return g.ledger.w3.eth.get_balance(address)


def test_third_party_slashes_equivocation(staked: Governed) -> None:
    cheat, reporter = staked.outsiders[0], staked.outsiders[1]
    a = envelope(staked, cheat, 1, b"\x01" * 32)
    b = envelope(staked, cheat, 1, b"\x02" * 32)
    before = _balance(staked, reporter.address)
    receipt = staked.gov_as(reporter).slash_equivocation(a, b)
    raw = staked.ledger.w3.eth.get_transaction_receipt(receipt.tx_hash)
    fee = raw["gasUsed"] * raw["effectiveGasPrice"]
    assert (receipt.member, receipt.round, receipt.amount, receipt.reward, receipt.removed) == (
        cheat.address, 1, 2 * ETH, 2 * ETH // 10, True)
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
        staked.gov_as(reporter).slash_equivocation(envelope(staked, cheat, 2, b"\x01" * 32),
                                                   envelope(staked, cheat, 2, b"\x02" * 32))
    pool_before = staked.ledger.balance()
    staked.governor.forward_slashed()
    assert staked.ledger.balance() == pool_before + 2 * ETH - 2 * ETH // 10


def test_unstaked_bootstrap_member_is_removed(staked: Governed) -> None:
    cheat = staked.accounts[2]
    r = staked.gov_as(staked.outsiders[1]).slash_equivocation(envelope(staked, cheat, 3, b"\x01" * 32),
                                                              envelope(staked, cheat, 3, b"\x02" * 32))
    assert (r.amount, r.removed) == (0, True)
    assert cheat.address not in staked.ledger.members()


def test_hostile_evidence(staked: Governed, dev_keys) -> None:
    cheat, reporter = staked.accounts[1], staked.gov_as(staked.outsiders[1])
    good = envelope(staked, cheat, 1, b"\x01" * 32)
    other = envelope(staked, cheat, 1, b"\x02" * 32)
    with pytest.raises(NotEquivocation):  # the same update twice
        reporter.slash_equivocation(good, envelope(staked, cheat, 1, b"\x01" * 32, keys=b"\x08" * 10))
    with pytest.raises(NotEquivocation):  # different rounds
        reporter.slash_equivocation(good, envelope(staked, cheat, 2, b"\x02" * 32))
    with pytest.raises(NotEquivocation):  # different senders
        reporter.slash_equivocation(good, envelope(staked, staked.accounts[2], 1, b"\x02" * 32))
    with pytest.raises(WrongFederation):
        reporter.slash_equivocation(good, envelope(staked, cheat, 1, b"\x02" * 32,
                                                   federation=staked.governor.address))
    with pytest.raises(WrongChain):
        reporter.slash_equivocation(envelope(staked, cheat, 1, b"\x02" * 32, chain_id=1), good)
    tampered = bytearray(other)
    tampered[70] ^= 1  # update hash changed after signing: recovers to another address
    with pytest.raises(InvalidSignature):
        reporter.slash_equivocation(good, bytes(tampered))
    forged = other[:-SIGNATURE_LEN] + envelope(staked, staked.outsiders[1], 1, b"\x02" * 32)[-SIGNATURE_LEN:]
    with pytest.raises(InvalidSignature):  # someone else's signature under the member's name
        reporter.slash_equivocation(good, forged)
    with pytest.raises(MalformedEnvelope):
        reporter.slash_equivocation(good, other[:100])
    with pytest.raises(MalformedEnvelope):
        reporter.slash_equivocation(good, other[:-SIGNATURE_LEN] + b"\0" + other[-SIGNATURE_LEN:])
    outsider = staked.outsiders[2]
    with pytest.raises(NotMember):  # a validly signed pair from a non-member
        reporter.slash_equivocation(envelope(staked, outsider, 1, b"\x01" * 32),
                                    envelope(staked, outsider, 1, b"\x02" * 32))
    assert cheat.address in staked.ledger.members()
    reporter.slash_equivocation(good, other)  # the genuine pair still slashes
    assert cheat.address not in staked.ledger.members()


def test_cross_federation_replay(staked: Governed, anvil, dev_keys) -> None:
    """Evidence against a member of one federation does not slash it in another it also belongs to."""
    second = deploy_governed(anvil.rpc_url, dev_keys)
    cheat = staked.accounts[0]
    a, b = envelope(staked, cheat, 1, b"\x01" * 32), envelope(staked, cheat, 1, b"\x02" * 32)
    with pytest.raises(WrongFederation):
        second.gov_as(second.outsiders[1]).slash_equivocation(a, b)
    staked.gov_as(staked.outsiders[1]).slash_equivocation(a, b)


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
