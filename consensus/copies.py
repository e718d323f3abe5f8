"""Which updates are copies of each other: the one definition the reward split and `dedup+<rule>` share.

Honest members train on different data, so their updates are never near each other compared with how far
apart honest updates usually are. Colluding attackers (ALIE, IPM, min-max, min-sum, Fang's Krum attack) and
copiers (mimic) send one update from several members. Two rows are *near-identical* when their exact squared
distance d satisfies NEAR_RATIO**2 * d <= reference (within 1/NEAR_RATIO of the reference distance), and
groups are the transitive closure of that relation. Everything is on exact integer distances, so every peer
computes the same groups whatever its thread count, and permuting the rows permutes the groups.
"""
from __future__ import annotations

from collections.abc import Sequence

#: near-identical = within 1/NEAR_RATIO of the reference pairwise distance (in Euclidean length).
NEAR_RATIO = 10


def kth_pair_distance(dist: Sequence[Sequence[int]], k: int) -> int:
    """The k-th smallest (0-based, clamped to the range) exact squared distance over the pairs i < j; 0 if n < 2."""
    n = len(dist)
    pairs = sorted(dist[i][j] for i in range(n) for j in range(i + 1, n))
    return pairs[max(0, min(k, len(pairs) - 1))] if pairs else 0


def copy_groups(dist: Sequence[Sequence[int]], reference: int) -> list[list[int]]:
    """Groups of near-identical rows (each sorted, ordered by lowest index); a row with no copy is its own group."""
    n = len(dist)
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i in range(n):
        for j in range(i + 1, n):
            if NEAR_RATIO * NEAR_RATIO * dist[i][j] <= reference:
                a, b = root(i), root(j)
                parent[max(a, b)] = min(a, b)
    groups: dict[int, list[int]] = {}
    for i in range(n):
        groups.setdefault(root(i), []).append(i)
    return [groups[r] for r in sorted(groups)]
