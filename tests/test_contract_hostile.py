"""Every way to misuse the ledger must revert with its precise error, and leave state untouched."""
from __future__ import annotations

import pytest
from fixtures_chain import AGG, CID_AGG, CID_REWARDS, ETH, oz_tree
from web3 import Web3

from devnet.compile import CONTRACTS_DIR, compile_source
from ledger_tools import chain
from ledger_tools.chain import vote_digest

ZERO = b"\0" * 32


def test_non_member_cannot_commit_or_vote(federation):
    fed = federation
    outsider = fed.owner.with_account(fed.outsiders[0].private_key)
    with pytest.raises(chain.NotMember) as err:
        outsider.commit(1, b"\1" * 32, "bafkreix", 1)
    assert err.value.account == fed.outsiders[0].address
    fed.commit_all(1)
    with pytest.raises(chain.NotMember):
        outsider.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)


def test_double_commit_late_commit_and_wrong_round(federation):
    fed = federation
    m = fed.members[0]
    m.commit(1, b"\1" * 32, "bafkreix", 1)
    with pytest.raises(chain.AlreadyCommitted):
        m.commit(1, b"\2" * 32, "bafkreiy", 1)
    with pytest.raises(chain.RoundNotOpen):
        fed.members[1].commit(2, b"\1" * 32, "bafkreix", 1)
    fed.advance(100)
    with pytest.raises(chain.CommitClosed):
        fed.members[1].commit(1, b"\1" * 32, "bafkreix", 1)
    assert fed.ledger.round_info(1).commit_count == 1


def test_early_vote_double_vote_late_vote(federation):
    fed = federation
    fed.commit_all(1, fed.members[:4])
    with pytest.raises(chain.VotingNotOpen):
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    fed.advance(100)
    fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    with pytest.raises(chain.AlreadyVoted):
        fed.members[0].vote(1, b"\2" * 32, CID_AGG, ZERO, CID_REWARDS)
    fed.advance(100)
    with pytest.raises(chain.VotingClosed):
        fed.members[1].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)


def test_close_failed_round_too_early_or_wrong_round(federation):
    fed = federation
    with pytest.raises(chain.VoteDeadlineNotReached):
        fed.members[0].close_failed_round(1)
    with pytest.raises(chain.RoundNotOpen):
        fed.members[0].close_failed_round(2)


def test_vote_after_finalization(federation):
    fed = federation
    fed.run_round(1)
    with pytest.raises(chain.RoundNotOpen):
        fed.members[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)


def test_digest_mismatch_and_unsorted_excluded(federation):
    fed = federation
    fed.commit_all(1)
    a = sorted((x.address for x in fed.accounts), key=lambda s: int(s, 16))
    with pytest.raises(chain.DigestMismatch) as err:
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [], digest=b"\x77" * 32)
    assert err.value.expected == vote_digest(AGG, ZERO, [])
    wrong = vote_digest(AGG, ZERO, [a[1]])  # digest of a different excluded set
    with pytest.raises(chain.DigestMismatch):
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [a[0]], digest=wrong)
    with pytest.raises(chain.ExcludedNotSorted):
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [a[1], a[0]])
    with pytest.raises(chain.ExcludedNotSorted):
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [a[0], a[0]])
    with pytest.raises(chain.ExcludedNotSorted) as err:
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, ["0x" + "00" * 20, a[0]])
    assert err.value.index == 0
    assert fed.ledger.votes(1) == []


def _rewarded_round(fed, amounts):
    return fed.run_round(1, amounts)


def test_forged_and_wrong_proofs(federation):
    fed = federation
    a = [x.address for x in fed.accounts]
    tree = _rewarded_round(fed, {a[0]: ETH // 2, a[1]: ETH // 4, a[2]: ETH // 4})
    m0, m3 = fed.members[0], fed.members[3]
    with pytest.raises(chain.InvalidProof):  # inflated amount
        m0.claim([1], [ETH], [tree.proof(a[0])])
    with pytest.raises(chain.InvalidProof):  # someone else's leaf and proof
        m3.claim([1], [ETH // 2], [tree.proof(a[0])])
    with pytest.raises(chain.InvalidProof):  # forged proof element
        m0.claim([1], [ETH // 2], [[b"\x13" * 32] + tree.proof(a[0])[1:]])
    with pytest.raises(chain.InvalidProof):  # empty proof
        m0.claim([1], [ETH // 2], [[]])
    with pytest.raises(chain.LengthMismatch):
        m0.claim([1], [ETH // 2, 1], [tree.proof(a[0])])
    with pytest.raises(chain.NotFinalized):  # the open round
        m0.claim([2], [ETH // 2], [tree.proof(a[0])])
    assert not fed.ledger.is_claimed(a[0], 1)


def test_double_claim_same_tx_and_later(federation):
    fed = federation
    a = [x.address for x in fed.accounts]
    tree = _rewarded_round(fed, {a[0]: ETH // 2, a[1]: ETH // 2})
    m0 = fed.members[0]
    with pytest.raises(chain.AlreadyClaimed):
        m0.claim([1, 1], [ETH // 2] * 2, [tree.proof(a[0])] * 2)
    m0.claim([1], [ETH // 2], [tree.proof(a[0])])
    with pytest.raises(chain.AlreadyClaimed) as err:
        m0.claim([1], [ETH // 2], [tree.proof(a[0])])
    assert err.value.round == 1
    assert fed.ledger.reserved() == ETH // 2


def test_claim_of_failed_round(federation):
    fed = federation
    a = [x.address for x in fed.accounts]
    fed.commit_all(1)
    tree = oz_tree(1, {a[0]: ETH})
    fed.members[0].vote(1, AGG, CID_AGG, tree.root, CID_REWARDS)  # a minority vote for a rewarding digest
    fed.advance(250)
    fed.members[0].close_failed_round(1)
    with pytest.raises(chain.NotFinalized):
        fed.members[0].claim([1], [ETH], [tree.proof(a[0])])


def test_pool_cannot_be_exceeded_by_a_bad_tree(federation):
    """Even a majority-approved tree cannot pay out more than the round's pool (other rounds' funds stay safe)."""
    fed = federation
    a = [x.address for x in fed.accounts]
    tree = _rewarded_round(fed, {a[0]: 2 * ETH})
    with pytest.raises(chain.PoolExceeded):
        fed.members[0].claim([1], [2 * ETH], [tree.proof(a[0])])


def test_reentrant_claim_is_rejected(federation, dev_keys):
    fed = federation
    artifact = compile_source(CONTRACTS_DIR / "test" / "ReentrantClaimer.sol")["ReentrantClaimer"]
    w3, attacker_key = fed.owner.w3, fed.outsiders[0]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor(fed.ledger.address).build_transaction(
        {"from": attacker_key.address, "nonce": w3.eth.get_transaction_count(attacker_key.address)})
    signed = w3.eth.account.sign_transaction(tx, attacker_key.private_key)
    address = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))[
        "contractAddress"]
    attacker = w3.eth.contract(address=address, abi=artifact.abi)

    a = [x.address for x in fed.accounts]
    tree = fed.run_round(1, {address: ETH // 2, a[0]: ETH // 2})
    payload = fed.ledger.contract.encode_abi("claim", [[1], [ETH // 2], [tree.proof(address)]])
    tx = attacker.functions.attack(payload).build_transaction(
        {"from": attacker_key.address, "nonce": w3.eth.get_transaction_count(attacker_key.address)})
    signed = w3.eth.account.sign_transaction(tx, attacker_key.private_key)
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))["status"] == 1

    assert attacker.functions.reentered().call() is True
    assert attacker.functions.reentrySucceeded().call() is False
    revert = attacker.functions.reentryRevert().call()
    assert revert[:4] == Web3.keccak(text="ReentrantCall()")[:4]
    assert w3.eth.get_balance(address) == ETH // 2 == attacker.functions.received().call()
    assert fed.ledger.round_info(1).unclaimed_wei == ETH // 2


def test_unauthorized_admin_calls(federation):
    fed = federation
    m = fed.members[0]
    newcomer = fed.outsiders[0].address
    with pytest.raises(chain.Unauthorized) as err:
        m.admit_member(newcomer, b"\1" * 32)
    assert err.value.caller == fed.accounts[0].address
    with pytest.raises(chain.Unauthorized):
        m.register_auditor(newcomer, b"\1" * 32)
    with pytest.raises(chain.AlreadyMember):
        fed.owner.admit_member(fed.accounts[1].address, b"\1" * 32)
    fed.owner.register_auditor(newcomer, b"\1" * 32)
    with pytest.raises(chain.AlreadyAuditor):
        fed.owner.register_auditor(newcomer, b"\2" * 32)
    assert newcomer not in fed.ledger.members()
