"""Splitting one dataset among simulated peers (experiments, demo, bench): IID and label-skewed non-IID.

All functions are deterministic in `seed` and return one sorted index array per peer; shards are disjoint
and together cover every sample.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def iid_partition(num_samples: int, n_peers: int, seed: int = 0) -> list[np.ndarray]:
    """Shuffle and cut into `n_peers` shards whose sizes differ by at most one."""
    if n_peers < 1:
        raise ValueError("n_peers must be >= 1")
    if num_samples < n_peers:
        raise ValueError(f"cannot give {n_peers} peers at least one of {num_samples} samples")
    perm = np.random.default_rng(seed).permutation(num_samples)
    return [np.sort(part) for part in np.array_split(perm, n_peers)]


def dirichlet_partition(
    labels: Sequence[int] | np.ndarray, n_peers: int, alpha: float, seed: int = 0, *, min_size: int = 1
) -> list[np.ndarray]:
    """Label-skewed split (Hsu, Qi & Brown 2019, "Measuring the effects of non-identical data distribution").

    For every class, the class's samples are split among peers in proportions drawn from Dirichlet(alpha·1).
    Small `alpha` (0.1) → each peer sees few classes; large `alpha` (100) → close to IID. Draws are repeated
    (same seeded generator) until every peer holds at least `min_size` samples.
    """
    y = np.asarray(labels)
    if n_peers < 1:
        raise ValueError("n_peers must be >= 1")
    if alpha <= 0:
        raise ValueError("alpha must be > 0")
    if len(y) < n_peers * min_size:
        raise ValueError(f"{len(y)} samples cannot give {n_peers} peers {min_size} each")
    rng = np.random.default_rng(seed)
    classes = np.unique(y)
    for _ in range(1000):
        shards: list[list[np.ndarray]] = [[] for _ in range(n_peers)]
        for c in classes:
            idx = rng.permutation(np.flatnonzero(y == c))
            proportions = rng.dirichlet(np.full(n_peers, alpha))
            cuts = (np.cumsum(proportions)[:-1] * len(idx)).astype(int)
            for peer, part in enumerate(np.split(idx, cuts)):
                shards[peer].append(part)
        parts = [np.sort(np.concatenate(s)).astype(np.int64) for s in shards]
        if min(len(p) for p in parts) >= min_size:
            return parts
    raise ValueError(f"no Dirichlet(alpha={alpha}) split gives every one of {n_peers} peers {min_size} samples")


def partition(
    labels: Sequence[int] | np.ndarray, n_peers: int, *, alpha: float | None = None, seed: int = 0
) -> list[np.ndarray]:
    """IID when `alpha` is None, else Dirichlet(alpha) label skew."""
    if alpha is None:
        return iid_partition(len(labels), n_peers, seed)
    return dirichlet_partition(labels, n_peers, alpha, seed)


def label_histogram(labels: Sequence[int] | np.ndarray, parts: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """peers × classes count matrix (for reports)."""
    y = np.asarray(labels)
    return np.stack([np.bincount(y[p], minlength=num_classes) for p in parts])
