"""`<attack>_noisy`: each Byzantine member's copy of the shared vector escapes dedup's merge, and the copies
still average to the plain attack (so what the measurement sees is the attack, not the noise)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from consensus.aggregators import RuleInput
from consensus.aggregators.dedup import dedup
from peer.byzantine.adversary import Adversary, Attack
from peer.byzantine.noisy import NOISY, SHARED, median_pair_distance
from peer.byzantine.optimised import flatten
from simulation.attacks import forge_update
from simulation.config import ATTACKS, SimConfig, SimError

N, F = 20, 6
RULE = "dedup+rescale+nnm+centered_clipping"


def _honest(seed: int = 0, count: int = N - F, d: int = 300) -> list[dict[str, torch.Tensor]]:
    """Heterogeneous honest updates: a common mean plus per-member spread of the same order (as real ones)."""
    g = torch.Generator().manual_seed(seed)
    mu = 0.01 * torch.randn(d, generator=g)
    return [{"w": (mu + 0.01 * torch.randn(d, generator=g))[:200].reshape(20, 10),
             "b": (mu + 0.01 * torch.randn(d, generator=g))[200:]} for _ in range(count)]


def _rows(vectors) -> list[np.ndarray]:
    """Flat float updates on the canonical grid (scale 2**20), as the rule sees them."""
    return [np.rint(v * 2**20).astype(np.int32) for v in vectors]


@pytest.mark.parametrize("name", ["alie", "ipm", "min_sum", "mimic", "ipm_opt"])
def test_noisy_copies_escape_dedup_and_average_to_the_plain_attack(name):
    honest = _honest()
    plain_adv, noisy_adv = Adversary.parse(name), Adversary.parse(f"{name}_noisy")
    kw = {"honest": honest[1:], "n": N, "f": F, "rule": RULE}  # ipm_opt line-searches against the rule
    plain = flatten(plain_adv.poison_update(honest[0], **kw))
    copies = [Adversary(noisy_adv.attack, seed=s).poison_update(honest[0], **kw) for s in range(F)]
    m = median_pair_distance(honest)
    vecs = np.stack([flatten(c) for c in copies])
    # each copy is the plain vector plus noise of norm exactly 0.2 * m
    assert np.allclose(np.linalg.norm(vecs - plain, axis=1), 0.2 * m, rtol=1e-4)
    # the copies' mean is the plain vector up to the averaged noise (~0.2 m / sqrt(F))
    assert np.linalg.norm(vecs.mean(0) - plain) < 1.5 * 0.2 * m / np.sqrt(F)

    flat_honest = [flatten(u) for u in honest]
    assert all(len(g) == 1 for g in dedup(RuleInput(_rows([*flat_honest, *vecs]), [1] * N, F)).groups)
    # the plain attack's identical copies are merged into one row: the test can see a merge
    merged = dedup(RuleInput(_rows([*flat_honest, *[plain] * F]), [1] * N, F))
    assert any(set(range(N - F, N)) <= set(g) for g in merged.groups)  # (mimic's also hold the copied member)


def test_noise_is_deterministic_per_seed_and_independent_across_peers():
    honest = _honest(1)
    a, b, c = (forge_update("alie_noisy", honest[0], honest, n=N, f=F, seed=s) for s in (7, 7, 8))
    plain = forge_update("alie", honest[0], honest, n=N, f=F, seed=7)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["w"], c["w"])
    m = median_pair_distance(honest)
    assert np.linalg.norm(flatten(a) - flatten(plain)) == pytest.approx(0.2 * m, rel=1e-4)
    half = forge_update("alie_noisy:noise_ratio=0.5", honest[0], honest, n=N, f=F, seed=7)
    assert np.linalg.norm(flatten(half) - flatten(plain)) == pytest.approx(0.5 * m, rel=1e-4)


def test_names_are_accepted_by_the_simulator_and_the_peers():
    assert set(NOISY) <= set(ATTACKS) and len(NOISY) == len(SHARED)
    for name in NOISY:
        assert SimConfig(peers=20, byzantine=4, attack=name).attack == name
        assert Attack(name).base.value == name.removesuffix("_noisy")
        assert Attack(name).needs_other_updates
    assert SimConfig(peers=20, byzantine=4, attack="ipm_opt_noisy:noise_ratio=1").attack.startswith("ipm_opt")
    for bad in ("sign_flip_noisy", "alie_noisy:noise_ratio=x", "label_flip:noise_ratio=1", "none:x=1"):
        with pytest.raises(SimError):
            SimConfig(peers=20, byzantine=4, attack=bad)
