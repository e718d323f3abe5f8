"""Splitting a round's integer reward pool by contribution score."""
from __future__ import annotations

from collections.abc import Sequence


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
