"""Hostile moves against the real contract on anvil that the contract tests do not already cover: a valid
proof replayed into another round, or under another account; a transfer between votes to split the digests."""
from __future__ import annotations

import pytest

from helpers.fixtures_chain import ETH
from ledger_tools import chain


def test_proof_of_one_round_does_not_pay_in_another(federation):
    """Leaves bind the round: the same split in rounds 1 and 2 gives two different roots, and a round-1 proof
    (a replay) is refused for round 2, alone or inside a multi-round claim; each round pays once."""
    fed = federation
    a = [x.address for x in fed.accounts]
    split = {a[0]: ETH // 2, a[1]: ETH // 2}
    t1 = fed.run_round(1, split)
    t2 = fed.run_round(2, split)
    assert t1.root != t2.root
    m0 = fed.members[0]
    with pytest.raises(chain.InvalidProof) as err:
        m0.claim([2], [ETH // 2], [t1.proof(a[0])])
    assert err.value.round == 2
    with pytest.raises(chain.InvalidProof):  # swapped proofs in one transaction
        m0.claim([1, 2], [ETH // 2, ETH // 2], [t2.proof(a[0]), t1.proof(a[0])])
    with pytest.raises(chain.InvalidProof):  # another member's valid proof of the same round and amount
        m0.claim([1], [ETH // 2], [t1.proof(a[1])])
    assert not fed.ledger.is_claimed(a[0], 1) and not fed.ledger.is_claimed(a[0], 2)
    assert m0.claim([1, 2], [ETH // 2, ETH // 2], [t1.proof(a[0]), t2.proof(a[0])]).total_wei == ETH
    with pytest.raises(chain.AlreadyClaimed):  # replaying the successful claim
        m0.claim([2], [ETH // 2], [t2.proof(a[0])])
    assert fed.ledger.round_info(1).unclaimed_wei == fed.ledger.round_info(2).unclaimed_wei == ETH // 2


def test_one_wei_transfer_between_votes_no_longer_splits_the_digests(make_federation):
    """Finding 3: on an underfunded federation, peers read the pool at their own vote time, so a non-member's
    1-wei transfer between two votes turned pool 0 into 1, changed the reward tree and the digest, and no digest
    reached quorum. Peers now split the pool fixed when the round opened: every digest agrees, the round
    finalizes, and the contract reserves exactly what the tree pays."""
    from types import SimpleNamespace

    import numpy as np

    import consensus
    from consensus.commitment import Commitment, CommittedUpdate
    from consensus.round_outcome import compute_round_outcome
    from peer.loop.vote_step import reward_pool

    fed = make_federation(funding_wei=0)
    genesis = consensus.encode({"w": np.zeros(4, dtype=np.float32)})
    updates = []
    for i, m in enumerate(fed.members):
        blob = consensus.encode({"w": np.full(4, 0.01 * (i + 1), dtype=np.float32)})
        m.commit(1, consensus.update_hash(blob), f"bafkreiu{i}", 100 + i)
        updates.append(CommittedUpdate(Commitment(m.account.address, consensus.update_hash(blob), "", 100 + i), blob))

    def vote_as_a_peer(m):
        ctx = SimpleNamespace(ledger=m, retry=lambda _what, fn, round=None: fn())
        out = compute_round_outcome(round=1, previous_model=genesis, updates=updates, rule="fedavg", rule_param=0,
                                    f=1, reward_pool=reward_pool(ctx, 1))
        return m.vote(1, out.aggregate_hash, "bafkreiagg", out.rewards_root, "bafkreitree", list(out.excluded))

    first = vote_as_a_peer(fed.members[0])
    attacker = fed.outsiders[0]
    w3 = fed.owner.w3
    tx = {"to": fed.ledger.address, "value": 1, "gas": 60_000, "gasPrice": w3.eth.gas_price, "chainId": w3.eth.chain_id,
          "nonce": w3.eth.get_transaction_count(attacker.address, "pending")}
    w3.eth.wait_for_transaction_receipt(
        w3.eth.send_raw_transaction(w3.eth.account.sign_transaction(tx, attacker.private_key).raw_transaction))
    assert fed.ledger.balance() - fed.ledger.reserved() == 1  # the pool at vote time would now be 1 wei
    receipts = [first]
    for m in fed.members[1:]:
        receipts.append(vote_as_a_peer(m))
        if receipts[-1].finalized:
            break
    assert {r.digest for r in receipts} == {first.digest}
    assert receipts[-1].finalized and fed.ledger.finalization(1).pool_wei == 0
    assert fed.ledger.reserved() == 0 and fed.ledger.round_pool(2) == 1  # the wei counts from round 2 on
