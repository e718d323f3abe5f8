"""Hostile claims against the real contract on anvil that the contract tests do not already cover:
a valid proof replayed into another round, or under another account."""
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
