"""A round's contribution scores and the split of its integer reward pool by them."""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from consensus.copies import copy_groups, kth_pair_distance
from consensus.intmath import sq_distances


def split_rewards(pool: int, scores: Sequence[int]) -> list[int]:
    """Largest-remainder split of `pool` (wei) in proportion to integer `scores`.

    Each peer first gets floor(pool * s_i / S); the leftover wei (fewer than the number of positive
    scores) go one each to the peers with the largest remainders (pool * s_i mod S), ties to the lower
    index. Peers with score 0 get nothing. The amounts sum to `pool`, or are all 0 when every score is 0.
    """
    if isinstance(pool, bool) or not isinstance(pool, int) or pool < 0:
        raise ValueError(f"pool must be a non-negative integer, got {pool!r}")
    scores = list(scores)
    if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in scores):
        raise ValueError("scores must be non-negative integers")
    total = sum(scores)
    if total == 0:
        return [0] * len(scores)
    shares = [divmod(pool * s, total) for s in scores]
    amounts = [q for q, _ in shares]
    leftover = pool - sum(amounts)
    order = sorted((i for i, s in enumerate(scores) if s > 0), key=lambda i: (-shares[i][1], i))
    for i in order[:leftover]:
        amounts[i] += 1
    return amounts


#: Quality is measured in millionths.
QUALITY_ONE = 10**6


def contribution_scores(rows: Sequence[np.ndarray], aggregate: np.ndarray, rule_scores: Sequence[int],
                        workers: int | None = None) -> list[int]:
    """Reward scores: the rule's score times the update's agreement with the aggregate, shared by copies.

    Why not the rule's score alone: a selection rule pays whatever it selects, and identical mean-hugging
    updates (ALIE, min-max, mimic) are what Multi-Krum finds most central. So, exactly on integers:
    - quality: with p = <x_i, a> / |a|^2 (the update's component along the aggregate, in units of it),
      q_i = floor(10**6 * min(p, 1/p)) for p > 0, else 0: 10**6 for an update whose component is the
      aggregate itself, 0 for one pointing away from it (sign flip, IPM), and a boosted update (p = 20) earns
      1/20 — no premium for size, none for hugging the mean either (p is about 1 for honest updates too);
    - copies share one score: updates within 1/10 of the median pairwise distance of each other (transitively)
      form a group, and each of its g members gets 1/g (scores are multiplied by L/g, L = lcm of the group
      sizes), so copying or colluding on one update earns nothing extra;
    - reward score = rule score * q_i * L / g_i (0 where the rule gave 0).
    All distances and inner products are exact (`consensus.intmath.sq_distances`), so every peer gets the
    same integers whatever its thread count; the result follows any permutation of the inputs.
    """
    n = len(rows)
    if n == 0:
        return []
    dist = sq_distances([*rows, aggregate.astype(np.int32), np.zeros_like(rows[0])], workers)
    agg_sq = dist[n][n + 1]
    quality = []
    for i in range(n):
        inner2 = dist[i][n + 1] + agg_sq - dist[i][n]  # 2 <x_i, a>, exactly
        if agg_sq == 0:
            quality.append(QUALITY_ONE)
        else:
            quality.append(QUALITY_ONE * min(inner2, 2 * agg_sq) // max(inner2, 2 * agg_sq) if inner2 > 0 else 0)
    median = kth_pair_distance(dist[:n], (n * (n - 1) // 2 - 1) // 2)
    size = [0] * n
    for group in copy_groups(dist[:n], median):
        for i in group:
            size[i] = len(group)
    lcm = 1
    for s in set(size):
        lcm = math.lcm(lcm, s)
    return [int(rule_scores[i]) * quality[i] * (lcm // size[i]) for i in range(n)]
