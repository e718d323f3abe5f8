"""Reward split, reward Merkle tree (checked against web3's keccak), vote digest."""
from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

import consensus
from consensus import RewardTree


def addr(i: int) -> str:
    return Web3.to_checksum_address("0x" + format(i * 0x1234567 + 1, "040x"))


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 10**24), st.lists(st.integers(0, 10**6), min_size=0, max_size=12))
def test_split_sums_to_pool_and_is_proportional(pool, scores):
    amounts = consensus.split_rewards(pool, scores)
    assert len(amounts) == len(scores)
    total = sum(scores)
    if total == 0:
        assert amounts == [0] * len(scores)
        return
    assert sum(amounts) == pool
    for a, s in zip(amounts, scores):
        assert abs(a * total - pool * s) < total  # within one wei of the exact share
        assert s > 0 or a == 0


def test_split_remainder_rule():
    assert consensus.split_rewards(10, [1, 1, 1]) == [4, 3, 3]
    assert consensus.split_rewards(5, [0, 2, 2, 1]) == [0, 2, 2, 1]
    assert consensus.split_rewards(7, [1, 2, 3]) == [1, 2, 4]  # remainders 1, 2, 3 (of 6)
    with pytest.raises(ValueError):
        consensus.split_rewards(-1, [1])
    with pytest.raises(ValueError):
        consensus.split_rewards(1, [-1])


def w3_leaf(round_: int, account: str, amount: int) -> bytes:
    inner = Web3.solidity_keccak(["bytes"], [Web3.to_bytes(hexstr=Web3.to_hex(
        round_.to_bytes(32, "big") + bytes(12) + bytes.fromhex(account[2:]) + amount.to_bytes(32, "big")))])
    return bytes(Web3.keccak(bytes(inner)))


def w3_verify(proof, root, leaf) -> bool:
    node = leaf
    for sib in proof:
        a, b = sorted([node, sib])
        node = bytes(Web3.solidity_keccak(["bytes32", "bytes32"], [a, b]))
    return node == root


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 8, 13])
def test_tree_proofs_verify_with_independent_keccak(size):
    accounts = [addr(i) for i in range(size)]
    amounts = [10**18 + i for i in range(size)]
    tree = RewardTree.build(7, accounts, amounts)
    assert len(tree.leaves) == size
    for account, amount in zip(accounts, amounts):
        leaf = consensus.reward_leaf(7, account, amount)
        assert leaf == w3_leaf(7, account, amount)
        proof = tree.proof(account)
        assert w3_verify(proof, tree.root, leaf)
        assert consensus.verify_proof(proof, tree.root, leaf)
        assert not consensus.verify_proof(proof, tree.root, consensus.reward_leaf(7, account, amount + 1))
    if size == 1:
        assert tree.root == tree.leaves[0]


def test_tree_edge_cases_and_json():
    empty = RewardTree.build(1, [], [])
    assert empty.root == b"\x00" * 32
    tree = RewardTree.build(3, [addr(2), addr(1).lower(), addr(3)], [5, 7, 0])
    assert [a for a, _ in tree.values] == [addr(1), addr(2)]  # zero omitted, ordered, checksummed
    with pytest.raises(KeyError):
        tree.proof(addr(3))
    again = RewardTree.from_json(tree.to_json())
    assert again == tree and again.root == tree.root
    dump = json.loads(tree.to_json())
    assert dump["format"] == "standard-v1" and dump["values"][0]["value"] == ["3", addr(1), "7"]
    dump["values"][0]["value"][2] = "8"
    with pytest.raises(ValueError):
        RewardTree.from_json(json.dumps(dump))
    with pytest.raises(ValueError):
        RewardTree.from_json("{}")
    with pytest.raises(ValueError):
        RewardTree.build(1, [addr(1), addr(1).lower()], [1, 2])
    with pytest.raises(ValueError):
        RewardTree.build(1, ["0x1234"], [1])
    assert RewardTree.build(1, [addr(1), addr(2)], [1, 2]).root == RewardTree.build(1, [addr(2), addr(1)], [2, 1]).root


def test_vote_digest_matches_solidity_packing():
    agg = bytes(range(32))
    root = bytes(range(32, 64))
    excluded = [addr(5), addr(2)]
    ex_hash = bytes(Web3.solidity_keccak(["address[]"], [sorted(excluded, key=lambda a: int(a, 16))]))
    assert consensus.excluded_hash(excluded) == ex_hash
    assert consensus.excluded_hash([]) == bytes(Web3.keccak(b""))
    expected = bytes(Web3.solidity_keccak(["bytes32", "bytes32", "bytes32"], [agg, root, ex_hash]))
    assert consensus.vote_digest(agg, root, excluded) == expected
    assert consensus.vote_digest(agg, root, list(reversed(excluded))) == expected
    with pytest.raises(ValueError):
        consensus.vote_digest(agg, root, [addr(1), addr(1)])
    with pytest.raises(ValueError):
        consensus.vote_digest(agg[:31], root, [])
