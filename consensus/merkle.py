"""The reward tree: OpenZeppelin StandardMerkleTree compatible (leaf encoding uint256 round, address account,
uint256 amount; double-hashed leaves; sorted-pair keccak256 nodes), so `MerkleProof.verify` accepts it.

Layout as in @openzeppelin/merkle-tree: leaf hashes sorted ascending fill the array tree from the end
(tree[len-1-i] = sorted_leaves[i]); node i = hash_pair(tree[2i+1], tree[2i+2]); root = tree[0].
Empty tree: root 0x00..00. Leaves with amount 0 are omitted; values are kept ordered by account.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from consensus.bounded_json import BoundedJsonError, loads_bounded
from consensus.keccak import address_bytes, checksum_address, keccak256

ZERO_ROOT = b"\x00" * 32
LEAF_ENCODING = ["uint256", "address", "uint256"]
#: Bounds for a dump read from IPFS: ~250 bytes per leaf, so 2**16 leaves (members) fit in 32 MiB.
MAX_REWARD_LEAVES = 1 << 16
MAX_REWARD_TREE_BYTES = 32 << 20
MAX_REWARD_TREE_DEPTH = 4  # object > values list > value object > value list


def _uint256(value: int) -> bytes:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**256:
        raise ValueError(f"not a uint256: {value!r}")
    return value.to_bytes(32, "big")


def reward_leaf(round: int, account: str, amount: int) -> bytes:
    """keccak256(keccak256(abi.encode(uint256 round, address account, uint256 amount)))."""
    encoded = _uint256(round) + b"\x00" * 12 + address_bytes(account) + _uint256(amount)
    return keccak256(keccak256(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    return keccak256(min(a, b) + max(a, b))


def verify_proof(proof: Sequence[bytes], root: bytes, leaf: bytes) -> bool:
    """OpenZeppelin MerkleProof.verify: fold the proof over the leaf with sorted pairs."""
    node = bytes(leaf)
    for sibling in proof:
        node = hash_pair(node, bytes(sibling))
    return node == bytes(root)


@dataclass(frozen=True)
class RewardTree:
    round: int
    values: tuple[tuple[str, int], ...]  # (checksummed account, amount), ascending account, amounts > 0
    tree: tuple[bytes, ...]

    @classmethod
    def build(cls, round: int, accounts: Sequence[str], amounts: Sequence[int]) -> RewardTree:
        _uint256(round)
        if len(accounts) != len(amounts):
            raise ValueError(f"{len(accounts)} accounts but {len(amounts)} amounts")
        for amount in amounts:
            _uint256(amount)
        values = sorted(((checksum_address(a), x) for a, x in zip(accounts, amounts) if x != 0),
                        key=lambda v: address_bytes(v[0]))
        for (a, _), (b, _) in zip(values, values[1:]):
            if a == b:
                raise ValueError(f"duplicate account {a}")
        return cls(round, tuple(values), _make_tree([reward_leaf(round, a, x) for a, x in values]))

    @property
    def root(self) -> bytes:
        return self.tree[0] if self.tree else ZERO_ROOT

    @property
    def leaves(self) -> tuple[bytes, ...]:
        """Leaf hashes in value order (ascending account)."""
        return tuple(reward_leaf(self.round, a, x) for a, x in self.values)

    def amount_of(self, account: str) -> int:
        key = address_bytes(account)
        return next((x for a, x in self.values if address_bytes(a) == key), 0)

    def leaf_index(self, account: str) -> int:
        leaf = reward_leaf(self.round, account, self.amount_of(account))
        if self.amount_of(account) == 0 or leaf not in self.tree:
            raise KeyError(f"{account} has no reward in round {self.round}")
        return self.tree.index(leaf)

    def proof(self, account: str) -> list[bytes]:
        index = self.leaf_index(account)
        out = []
        while index > 0:
            out.append(self.tree[index - 1 if index % 2 == 0 else index + 1])
            index = (index - 1) // 2
        return out

    def to_json(self) -> str:
        """The @openzeppelin/merkle-tree `dump()` format (standard-v1); published on IPFS."""
        tree_index = {leaf: self.tree.index(leaf) for leaf in self.leaves}
        return json.dumps({
            "format": "standard-v1",
            "leafEncoding": LEAF_ENCODING,
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [{"value": [str(self.round), a, str(x)], "treeIndex": tree_index[leaf]}
                       for (a, x), leaf in zip(self.values, self.leaves)],
        }, separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, text: str | bytes) -> RewardTree:
        """Load a dump from untrusted bytes and check that it is consistent (every node recomputed).

        Any problem — too large, nested too deep, wrong shape or types, nodes that do not match the values — is
        one `ValueError` (`RewardTreeFormatError`); nothing else escapes, whatever the bytes."""
        try:
            data = loads_bounded(text, max_bytes=MAX_REWARD_TREE_BYTES, max_depth=MAX_REWARD_TREE_DEPTH,
                                 what="reward tree")
        except BoundedJsonError as exc:
            raise RewardTreeFormatError(str(exc)) from None
        round_, accounts, amounts, nodes = _parse_dump(data)
        try:
            tree = cls.build(round_, accounts, amounts)
        except ValueError as exc:  # bad address, amount over uint256, duplicate account
            raise RewardTreeFormatError(f"reward tree values are invalid: {exc}") from None
        if ["0x" + node.hex() for node in tree.tree] != nodes:
            raise RewardTreeFormatError("reward tree nodes do not match its values")
        return tree


class RewardTreeFormatError(ValueError):
    """A reward tree dump is not a consistent standard-v1 tree (the one error `RewardTree.from_json` raises)."""


def _parse_dump(data: object) -> tuple[int, list[str], list[int], list[str]]:
    """(round, accounts, amounts, tree nodes) of a parsed dump, every field's type checked before use."""
    if not isinstance(data, dict):
        raise RewardTreeFormatError(f"reward tree must be a JSON object, not {type(data).__name__}")
    missing = [key for key in ("format", "leafEncoding", "tree", "values") if key not in data]
    if missing:
        raise RewardTreeFormatError(f"reward tree lacks {', '.join(repr(k) for k in missing)}")
    if data["format"] != "standard-v1" or data["leafEncoding"] != LEAF_ENCODING:
        raise RewardTreeFormatError("not a standard-v1 reward tree with leaf encoding (uint256,address,uint256)")
    values, nodes = data["values"], data["tree"]
    if not isinstance(values, list) or not isinstance(nodes, list):
        raise RewardTreeFormatError("reward tree 'values' and 'tree' must be lists")
    if len(values) > MAX_REWARD_LEAVES or len(nodes) != max(0, 2 * len(values) - 1):
        raise RewardTreeFormatError(f"reward tree has {len(values)} values and {len(nodes)} nodes "
                                    f"(at most {MAX_REWARD_LEAVES} values, 2n-1 nodes)")
    if not all(isinstance(n, str) for n in nodes):
        raise RewardTreeFormatError("reward tree nodes must be hex strings")
    rounds, accounts, amounts = set(), [], []
    for v in values:
        value = v.get("value") if isinstance(v, dict) else None
        if not (isinstance(value, list) and len(value) == 3 and all(isinstance(x, str) for x in value)):
            raise RewardTreeFormatError("each reward tree value must be {'value': [round, account, amount]} strings")
        rounds.add(_decimal(value[0], "round"))
        accounts.append(value[1])
        amounts.append(_decimal(value[2], "amount"))
    if len(rounds) > 1:
        raise RewardTreeFormatError("values from more than one round")
    if any(x <= 0 for x in amounts):
        raise RewardTreeFormatError("reward tree has a non-positive amount")
    return (rounds.pop() if rounds else 0), accounts, amounts, nodes


def _decimal(text: str, what: str) -> int:
    """A uint256 written in decimal, as the dump writes it (78 digits at most: no int-parsing blow-up)."""
    if not (0 < len(text) <= 78 and text.isascii() and text.isdigit()):
        raise RewardTreeFormatError(f"reward tree {what} {text[:80]!r} is not a decimal uint256")
    value = int(text)
    if value >= 2**256:
        raise RewardTreeFormatError(f"reward tree {what} does not fit in uint256")
    return value


def _make_tree(leaves: list[bytes]) -> tuple[bytes, ...]:
    if not leaves:
        return ()
    ordered = sorted(leaves)
    size = 2 * len(ordered) - 1
    tree: list[bytes] = [b""] * size
    for i, leaf in enumerate(ordered):
        tree[size - 1 - i] = leaf
    for i in range(size - 1 - len(ordered), -1, -1):
        tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
    return tuple(tree)
