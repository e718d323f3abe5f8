"""The contributor's view of its rewards, and the arguments of one `claim` transaction.

Each finalized round publishes its reward tree (OpenZeppelin standard-v1 dump) on IPFS; its CID travels with
the finalization event. A contributor fetches it, checks that it rebuilds the root the chain finalized, and
takes its Merkle proof from it — no peer has to be asked or trusted.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import consensus
from ledger_tools.blob_caps import REWARD_TREE_CAP
from ledger_tools.blobstore import BlobStoreError
from ledger_tools.errors import LedgerToolsError

ZERO_ROOT = b"\x00" * 32


class RewardTreeError(LedgerToolsError):
    """A round's published reward tree is missing, malformed, or does not rebuild the finalized root."""


class NothingToClaim(LedgerToolsError):
    """No finalized round holds an unclaimed reward for the account."""


def load_reward_tree(store, round: int, rewards_cid: str, expected_root: bytes) -> "consensus.RewardTree":
    """Fetch the reward tree of `round` from `rewards_cid` and check it against the finalized root."""
    if not rewards_cid:
        if expected_root == ZERO_ROOT:
            return consensus.RewardTree.build(round, [], [])
        raise RewardTreeError(f"round {round}: no reward tree CID was published for root 0x{expected_root.hex()}")
    try:
        raw = store.cat(rewards_cid, max_bytes=REWARD_TREE_CAP)  # capped before the (bounded) parser
    except BlobStoreError as exc:
        raise RewardTreeError(f"round {round}: cannot fetch reward tree {rewards_cid}: {exc}") from exc
    try:
        tree = consensus.RewardTree.from_json(raw)
    except ValueError as exc:
        raise RewardTreeError(f"round {round}: reward tree {rewards_cid} is malformed: {exc}") from exc
    if tree.values and tree.round != round:
        raise RewardTreeError(f"round {round}: reward tree {rewards_cid} is for round {tree.round}")
    if tree.root != expected_root:
        raise RewardTreeError(
            f"round {round}: reward tree {rewards_cid} has root 0x{tree.root.hex()}, "
            f"the chain finalized 0x{expected_root.hex()}"
        )
    return tree


@dataclass(frozen=True)
class RewardEntry:
    """One finalized round's reward for an account."""

    round: int
    amount: int
    proof: tuple[bytes, ...]
    claimed: bool

    @property
    def claimable(self) -> bool:
        return self.amount > 0 and not self.claimed


@dataclass(frozen=True)
class RewardProblem:
    """A finalized round whose rewards can't be determined (tree unavailable or inconsistent)."""

    round: int
    reason: str


@dataclass(frozen=True)
class RewardsView:
    account: str
    entries: tuple[RewardEntry, ...]
    problems: tuple[RewardProblem, ...]

    @property
    def claimable(self) -> tuple[RewardEntry, ...]:
        return tuple(e for e in self.entries if e.claimable)

    @property
    def total_earned(self) -> int:
        return sum(e.amount for e in self.entries)

    @property
    def total_claimed(self) -> int:
        return sum(e.amount for e in self.entries if e.claimed)

    @property
    def total_claimable(self) -> int:
        return sum(e.amount for e in self.claimable)


def reward_trees(history, store, *, rounds: Iterable[int] | None = None,
                 trees: dict[int, "consensus.RewardTree"] | None = None,
                 ) -> tuple[dict[int, "consensus.RewardTree"], list[RewardProblem]]:
    """The checked reward tree of every finalized round (of `rounds`, when given), and the rounds that have none.

    `trees` caches loaded trees across calls (round -> tree) and is filled in place.
    """
    trees = {} if trees is None else trees
    wanted = None if rounds is None else set(rounds)
    found, problems = {}, []
    for rec in history.finalized():
        if wanted is not None and rec.round not in wanted:
            continue
        fin = rec.finalization
        if rec.round not in trees:
            try:
                trees[rec.round] = load_reward_tree(store, rec.round, fin.rewards_cid, fin.rewards_root)
            except RewardTreeError as exc:
                problems.append(RewardProblem(rec.round, str(exc)))
                continue
        found[rec.round] = trees[rec.round]
    return found, problems


def rewards_of(history, store, account: str, *, rounds: Iterable[int] | None = None,
               trees: dict[int, "consensus.RewardTree"] | None = None) -> RewardsView:
    """Reward per finalized round for `account` (from the published trees), with proofs and claim status.

    Claim status comes from the `Claimed` events.
    """
    claimed = history.claimed_rounds(account)
    found, problems = reward_trees(history, store, rounds=rounds, trees=trees)
    entries = [RewardEntry(r, tree.amount_of(account), tuple(tree.proof(account)), r in claimed)
               for r, tree in found.items() if tree.amount_of(account) > 0]
    return RewardsView(account, tuple(entries), tuple(problems))


@dataclass(frozen=True)
class ClaimCall:
    """Arguments of `claim(uint256[] rounds, uint256[] amounts, bytes32[][] proofs)`."""

    rounds: tuple[int, ...]
    amounts: tuple[int, ...]
    proofs: tuple[tuple[bytes, ...], ...]

    @property
    def total(self) -> int:
        return sum(self.amounts)

    def args(self) -> tuple[list[int], list[int], list[list[bytes]]]:
        return list(self.rounds), list(self.amounts), [list(p) for p in self.proofs]


def build_claim(entries: Sequence[RewardEntry]) -> ClaimCall:
    """One claim for every claimable entry, rounds ascending; NothingToClaim when there is none."""
    todo = sorted((e for e in entries if e.claimable), key=lambda e: e.round)
    if not todo:
        raise NothingToClaim("no unclaimed reward in any finalized round")
    return ClaimCall(tuple(e.round for e in todo), tuple(e.amount for e in todo), tuple(e.proof for e in todo))
