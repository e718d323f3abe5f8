"""Dedup-evading variants of the colluding attacks: `<attack>_noisy` (wired into `adversary.Attack`).

Why: `dedup+<rule>` (consensus/aggregators/dedup.py) merges near-identical updates into one row, so the
attacks where every Byzantine member sends the *same* vector (ALIE, IPM, min-max, min-sum, their line-searched
variants, mimic) count once. The obvious adaptive counter is to make the copies differ: each Byzantine member
sends the shared forged vector plus its own Gaussian noise, just large enough to escape the merge.

Definition: noise of L2 norm exactly `noise_ratio` · m, where m is the median pairwise L2 distance between the
honest updates the attacker knows (omniscient in the simulator: the round's honest updates; a real member:
its own and the ones it could unseal), direction uniform on the sphere (a normalised N(0, I) draw seeded by
the member's round seed, so deterministic per (seed, peer, round)). Two copies are then ≈ √2 · noise_ratio · m
apart; dedup merges within 1/10 of (at most) the median honest distance, so the default 0.2 escapes it ~2.8×
over while the copies' mean stays within noise_ratio · m / √f of the plain attack vector.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from peer.byzantine.optimised import flatten, unflatten

#: The attacks whose Byzantine members all send one vector, and so can be noised apart.
SHARED = ("alie", "ipm", "min_max", "min_sum", "alie_opt", "ipm_opt", "mimic")
SUFFIX = "_noisy"
NOISY = tuple(name + SUFFIX for name in SHARED)
#: Default noise norm as a fraction of the median honest pairwise distance (2× dedup's 1/10).
NOISE_RATIO = 0.2


def base_name(attack: str) -> str:
    """The attack a noisy variant adds noise to (`"alie_noisy"` → `"alie"`); other names unchanged."""
    return attack.removesuffix(SUFFIX) if attack in NOISY else attack


def median_pair_distance(updates: Sequence[Mapping[str, torch.Tensor]]) -> float:
    """Median L2 distance over the pairs of `updates` (0 for fewer than 2)."""
    if len(updates) < 2:
        return 0.0
    x = np.stack([flatten(u) for u in updates])
    g = x @ x.T
    d = np.diag(g)
    sq = np.maximum(d[:, None] + d[None, :] - 2 * g, 0.0)
    return float(np.median(np.sqrt(sq[np.triu_indices(len(x), 1)])))


def evade_dedup(forged: Mapping[str, torch.Tensor], honest: Sequence[Mapping[str, torch.Tensor]], *,
                noise_ratio: float = NOISE_RATIO, seed: int = 0) -> dict[str, torch.Tensor]:
    """`forged` plus noise of norm `noise_ratio` · (median pairwise distance of `honest`), direction from `seed`."""
    vec = flatten(forged)
    scale = float(noise_ratio) * median_pair_distance(honest)
    if scale <= 0 or vec.size == 0:
        return {k: v.to(torch.float32).clone() for k, v in forged.items()}
    z = np.random.default_rng(int(seed) & 0x7FFF_FFFF_FFFF_FFFF).standard_normal(vec.size)
    return unflatten(vec + z * (scale / max(float(np.linalg.norm(z)), 1e-30)), forged)
