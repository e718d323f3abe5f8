"""Every way to misuse the ledger must revert with its precise error, and leave state untouched."""
from __future__ import annotations

import pytest
from web3 import Web3

from consensus.digest import vote_digest
from devnet.compile import CONTRACTS_DIR, compile_source
from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, ETH, oz_tree
from ledger_tools import chain

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


def _ledger_snapshot(fed, r: int, digests) -> dict:
    """Everything a late vote for round `r` must leave untouched."""
    lg = fed.ledger
    return {"model": lg.model(), "round": lg.current_round(), "info": lg.round_info(r), "fin": lg.finalization(r),
            "finalized": len(lg.finalizations()), "reserved": lg.reserved(), "balance": lg.balance(),
            "tally": [lg.tally(r, d) for d in digests], "next": lg.round_info(r + 1)}


def test_vote_after_finalization_is_a_late_vote(federation):
    """A vote arriving after the majority finalized is recorded and moves only the voter's reputation."""
    fed = federation
    m = fed.members
    fed.run_round(1)  # members 0-2 finalize (3 of 5)
    good, other = vote_digest(AGG, ZERO, []), vote_digest(b"\x66" * 32, ZERO, [])
    before = _ledger_snapshot(fed, 1, [good, other])

    receipt = m[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)  # the finalized digest, just late
    assert receipt.late and not receipt.finalized and receipt.weight == 0
    dissent = m[3].vote(1, b"\x66" * 32, CID_AGG, ZERO, CID_REWARDS)  # another digest, late
    assert dissent.late and not dissent.finalized
    assert _ledger_snapshot(fed, 1, [good, other]) == before  # no tally, no second finalization, same model

    votes = fed.ledger.votes(1)
    assert [v.late for v in votes] == [False, False, False, True, True]
    assert (votes[3].member, votes[3].digest, votes[3].weight) == (m[4].account.address, good, 0)
    assert (votes[4].member, votes[4].digest) == (m[3].account.address, other)
    # reputation: the late agreeing vote keeps 1.0, the late dissent is settled at once as outcome 0
    a3, a4 = m[3].account.address, m[4].account.address
    assert fed.ledger.member_info(a4).weight == fed.ledger.member_info(a4).effective_weight == chain.WEIGHT_ONE
    assert fed.ledger.member_info(a3).weight == 900_000
    [update] = fed.ledger.weight_updates(a3)
    assert (update.vote_round, update.rewarded, update.missed_rounds) == (1, False, 0)
    assert fed.ledger.total_weight() == 4 * chain.WEIGHT_ONE + 900_000

    with pytest.raises(chain.AlreadyVoted):  # once per round, late or not
        m[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    with pytest.raises(chain.AlreadyVoted):
        m[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    fed.commit_all(2)  # round 2 is unaffected: it opened at the finalization and runs as usual
    assert fed.ledger.round_info(2).commit_count == 5


def test_late_vote_is_checked_like_a_vote(federation):
    fed = federation
    fed.run_round(1)
    a = sorted((x.address for x in fed.accounts), key=lambda s: int(s, 16))
    late = fed.members[4]
    with pytest.raises(chain.DigestMismatch):
        late.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [], digest=b"\x77" * 32)
    with pytest.raises(chain.ExcludedNotSorted):
        late.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [a[1], a[0]])
    outsider = fed.owner.with_account(fed.outsiders[0].private_key)
    with pytest.raises(chain.NotMember):
        outsider.vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    with pytest.raises(chain.RoundNotOpen):  # a future round
        late.vote(3, AGG, CID_AGG, ZERO, CID_REWARDS)
    with pytest.raises(chain.RoundNotOpen):
        late.vote(0, AGG, CID_AGG, ZERO, CID_REWARDS)
    assert [v.member for v in fed.ledger.votes(1)] == [m.account.address for m in fed.members[:3]]


def test_late_vote_after_the_vote_deadline_or_on_a_failed_round(federation):
    fed = federation
    # round 1 fails: a vote for it afterwards is rejected
    fed.commit_all(1)
    fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    fed.advance(250)
    fed.members[0].close_failed_round(1)
    with pytest.raises(chain.VotingClosed) as err:
        fed.members[1].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    assert err.value.round == 1
    # round 2 finalizes; once its original vote deadline (start + 100 + 100) passed, late votes are rejected
    fed.run_round(2)
    fed.advance(250)
    with pytest.raises(chain.VotingClosed):
        fed.members[4].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS)
    assert len(fed.ledger.votes(1)) == 1 and len(fed.ledger.votes(2)) == 3


def test_late_vote_after_voting_a_later_round_or_joining_later(federation):
    fed = federation
    m = fed.members
    fed.run_round(1)
    fed.commit_all(2)
    m[4].vote(2, AGG, CID_AGG, ZERO, CID_REWARDS)  # on time in round 2 (not finalizing)
    with pytest.raises(chain.VoteOutOfOrder) as err:
        m[4].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    assert (err.value.round, err.value.lastVoteRound) == (1, 2)
    newcomer = fed.outsiders[0]
    fed.owner.admit_member(newcomer.address, b"\x09" * 32)
    with pytest.raises(chain.AlreadySettled):  # was not a member when round 1 was decided
        fed.owner.with_account(newcomer.private_key).vote(1, AGG, CID_AGG, ZERO, CID_REWARDS)
    assert all(not v.late for v in fed.ledger.votes(1))


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
    with pytest.raises(chain.ExcludedNotSorted):  # the contract checks the list before the digest
        fed.members[0].vote(1, AGG, CID_AGG, ZERO, CID_REWARDS, [a[0], a[0]], digest=b"\x77" * 32)
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


def test_member_without_a_usable_encryption_key_is_refused(federation):
    """A member nobody can seal to would make every honest peer's seal fail (found in the security review):
    the contract refuses an all-zero X25519 key at admission, as it does for auditors."""
    fed = federation
    newcomer = fed.outsiders[0].address
    with pytest.raises(chain.InvalidParameter):
        fed.owner.admit_member(newcomer, b"\0" * 32)
    with pytest.raises(chain.InvalidParameter):
        fed.owner.register_auditor(newcomer, b"\0" * 32)
    assert newcomer not in fed.ledger.members()
