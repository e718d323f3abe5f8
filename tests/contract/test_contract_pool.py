"""The reward pool against a real anvil: fixed when the round opens, reserved exactly at finalization (nothing
for an empty tree), unclaimed rewards swept back after the claim window, and no wei lost across rounds."""
from __future__ import annotations

import pytest

from helpers.fixtures_chain import AGG, CID_AGG, CID_REWARDS, ETH, oz_tree
from ledger_tools import chain


def _send_wei(fed, sender, wei: int) -> None:
    """A plain ETH transfer (the contract's `receive`), signed by `sender`."""
    w3 = fed.owner.w3
    tx = {"to": fed.ledger.address, "value": wei, "gas": 60_000, "gasPrice": w3.eth.gas_price,
          "nonce": w3.eth.get_transaction_count(sender.address, "pending"), "chainId": w3.eth.chain_id}
    signed = w3.eth.account.sign_transaction(tx, sender.private_key)
    assert w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))["status"] == 1


def test_transfers_while_open_leave_the_round_pool_alone(make_federation):
    """Anyone can fund at any time; the open round's pool (and what its finalization reserves) is the one fixed
    when it opened, so a transfer between two votes cannot change what the tree must split."""
    fed = make_federation(funding_wei=0)
    a = [x.address for x in fed.accounts]
    assert fed.ledger.round_pool(1) == 0
    fed.commit_all(1)
    tree = oz_tree(1, {})
    fed.members[0].vote(1, AGG, CID_AGG, tree.root, CID_REWARDS)
    _send_wei(fed, fed.outsiders[0], 1)          # the 1-wei transfer by a non-member
    fed.owner.fund(3 * ETH)                      # and a real top-up
    assert fed.ledger.round_pool(1) == 0 and fed.ledger.round_info(1).unclaimed_wei == 0
    for m in fed.members[1:]:
        if m.vote(1, AGG, CID_AGG, tree.root, CID_REWARDS).finalized:
            break
    assert fed.ledger.finalization(1).pool_wei == 0 and fed.ledger.reserved() == 0
    assert fed.ledger.round_pool(2) == ETH       # the top-up counts from the next round on
    fed.run_round(2, {a[0]: ETH})
    assert fed.ledger.reserved() == ETH


def test_empty_tree_reserves_nothing(federation):
    """Finding 4: a round finalized with rewardsRoot = 0 used to reserve its pool, which no claim could ever
    reach. Now it reserves nothing and the pool stays free for the next round."""
    fed = federation
    a = [x.address for x in fed.accounts]
    fed.run_round(1)  # empty tree
    fin = fed.ledger.finalization(1)
    assert fin.rewards_root == b"\0" * 32 and fin.pool_wei == ETH  # the round's pool, as the tree split it
    assert fed.ledger.reserved() == 0 and fed.ledger.round_info(1).unclaimed_wei == 0
    with pytest.raises(chain.NotFinalized):
        fed.members[0].claim([1], [0], [[]])
    with pytest.raises(chain.NothingToSweep):
        fed.members[0].sweep(1)
    assert fed.ledger.round_pool(2) == ETH
    fed.run_round(2, {a[0]: ETH})
    assert fed.ledger.reserved() == ETH


def test_sweep_after_the_claim_window_returns_unclaimed_rewards(make_federation):
    fed = make_federation(funding_wei=ETH)
    a = [x.address for x in fed.accounts]
    tree = fed.run_round(1, {a[0]: ETH // 2, a[1]: ETH // 2})
    fed.members[0].claim([1], [ETH // 2], [tree.proof(a[0])])
    assert fed.ledger.round_pool(2) == 0  # everything else is reserved for round 1's tree
    sweeper = fed.owner.with_account(fed.outsiders[0].private_key)  # anyone may sweep
    with pytest.raises(chain.ClaimWindowOpen) as err:
        sweeper.sweep(1)
    window = fed.ledger.claim_window()
    assert window == 365 * 24 * 3600 and err.value.closesAt == fed.ledger.round_info(1).vote_deadline + window
    for bad in (0, 2, 99):  # never opened, open, future: nothing reserved there
        with pytest.raises(chain.NothingToSweep):
            sweeper.sweep(bad)
    fed.advance(window + 300)
    receipt = sweeper.sweep(1)
    assert receipt.amount_wei == ETH // 2
    assert fed.ledger.reserved() == 0 and fed.ledger.round_info(1).unclaimed_wei == 0
    [swept] = fed.ledger.sweeps()
    assert (swept.round, swept.swept_by, swept.amount_wei) == (1, fed.outsiders[0].address, ETH // 2)
    with pytest.raises(chain.NothingToSweep):
        sweeper.sweep(1)
    with pytest.raises(chain.PoolExceeded):  # too late: the rest went back to the pool
        fed.members[1].claim([1], [ETH // 2], [tree.proof(a[1])])
    # round 2 failed meanwhile (its deadline passed); round 3 opens with the swept wei in its pool
    fed.members[0].close_failed_round(2)
    assert fed.ledger.round_pool(3) == ETH // 2


def test_no_wei_lost_over_rounds(make_federation):
    """funded = claimed + claimable + free, and per round: reserved = claimed + claimable + swept, over rounds
    with full, short and empty trees, a failed round, top-ups, claims and a sweep."""
    fed = make_federation(funding_wei=2 * ETH + ETH // 3)
    a = [x.address for x in fed.accounts]
    trees = {1: fed.run_round(1, {a[0]: ETH // 3, a[1]: ETH - ETH // 3})}
    fed.run_round(2)                                   # empty tree: nothing reserved
    trees[3] = fed.run_round(3, {a[2]: ETH})
    fed.owner.fund(ETH // 7)
    trees[4] = fed.run_round(4, {a[0]: ETH // 3})      # pool ETH // 3 (what was left at open)
    fed.commit_all(5)
    fed.advance(250)
    fed.members[3].close_failed_round(5)
    fed.members[0].claim([1, 4], [ETH // 3, ETH // 3], [trees[1].proof(a[0]), trees[4].proof(a[0])])
    fed.members[2].claim([3], [ETH], [trees[3].proof(a[2])])
    fed.advance(fed.ledger.claim_window() + 300)
    fed.members[4].sweep(1)                            # a[1] never claimed round 1

    reserved_by_round = {f.round: f.pool_wei for f in fed.ledger.finalizations() if f.rewards_root != b"\0" * 32}
    assert reserved_by_round == {1: ETH, 3: ETH, 4: ETH // 3}
    claimed: dict[int, int] = {}
    for c in fed.ledger.claims():
        for r, x in zip(c.rounds, c.amounts):
            claimed[r] = claimed.get(r, 0) + x
    swept = {s.round: s.amount_wei for s in fed.ledger.sweeps()}
    for r, pool in reserved_by_round.items():
        assert pool == claimed.get(r, 0) + fed.ledger.round_info(r).unclaimed_wei + swept.get(r, 0)
    funded, balance, reserved = fed.ledger.funded_wei(), fed.ledger.balance(), fed.ledger.reserved()
    assert funded == 2 * ETH + ETH // 3 + ETH // 7
    assert reserved == sum(fed.ledger.round_info(r).unclaimed_wei for r in reserved_by_round) == 0
    assert balance == funded - sum(claimed.values())   # no wei lost: what was not paid is still here
    assert fed.ledger.round_pool(6) == ETH // 7       # fixed when round 5 failed, before the claims and sweep
