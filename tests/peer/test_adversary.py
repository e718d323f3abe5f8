"""Byzantine behaviours do exactly what they claim (and nothing to the inputs)."""
from __future__ import annotations

import statistics

import pytest
import torch

from peer.byzantine.adversary import (
    ATTACK_NAMES,
    Adversary,
    Attack,
    AttackKind,
    alie,
    alie_z,
    equivocation_update,
    garbage_blob,
    gaussian,
    ipm,
    label_flip,
    mean_std,
    scaled,
    sign_flip,
    wrong_digest,
)
from peer.learning.tasks import TaskData


def _update(seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return {"w": scale * torch.randn(4, 3, generator=g), "b": scale * torch.randn(3, generator=g)}


def _eq(a, b, tol=1e-6):
    return a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=tol) for k in a)


def test_names_and_kinds():
    assert ATTACK_NAMES == (
        "sign_flip", "gaussian", "scaled", "label_flip", "alie", "ipm", "equivocate", "wrong_vote", "silent", "garbage",
        "min_max", "min_sum", "fang", "alie_opt", "ipm_opt", "mimic",
        "alie_noisy", "ipm_noisy", "min_max_noisy", "min_sum_noisy", "alie_opt_noisy", "ipm_opt_noisy", "mimic_noisy",
    )
    assert Attack.LABEL_FLIP.kind is AttackKind.DATA
    assert {a for a in Attack if a.kind is AttackKind.PROTOCOL} == {
        Attack.EQUIVOCATE, Attack.WRONG_VOTE, Attack.SILENT, Attack.GARBAGE
    }
    assert {a for a in Attack if a.needs_other_updates} == {
        Attack.ALIE, Attack.IPM, Attack.MIN_MAX, Attack.MIN_SUM, Attack.FANG, Attack.ALIE_OPT, Attack.IPM_OPT,
        Attack.MIMIC, *(a for a in Attack if a.value.endswith("_noisy")),
    }


def test_sign_flip_scaled_and_inputs_untouched():
    u = _update()
    copy = {k: v.clone() for k, v in u.items()}
    assert _eq(sign_flip(u), {k: -v for k, v in u.items()})
    assert _eq(sign_flip(u, factor=3), {k: -3 * v for k, v in u.items()})
    assert _eq(scaled(u), {k: 10 * v for k, v in u.items()})
    assert _eq(Attack.SCALED.apply(u, factor=-2), {k: -2 * v for k, v in u.items()})
    assert _eq(u, copy, tol=0)


def test_gaussian_is_seeded_noise_of_the_right_shape():
    u = _update()
    a, b, c = gaussian(u, std=5.0, seed=1), gaussian(u, std=5.0, seed=1), gaussian(u, std=5.0, seed=2)
    assert _eq(a, b, tol=0) and not _eq(a, c)
    assert all(a[k].shape == u[k].shape and a[k].dtype == torch.float32 for k in u)
    big = gaussian({"x": torch.zeros(100_000)}, std=5.0, seed=0)["x"]
    assert abs(big.std().item() - 5.0) < 0.1 and abs(big.mean().item()) < 0.1


def test_alie_is_mean_minus_z_std():
    honest = [_update(s) for s in range(6)]
    mean, std = mean_std(honest)
    out = alie(honest, z=1.5)
    assert _eq(out, {k: mean[k] - 1.5 * std[k] for k in mean})
    # default z from (n, f) as in Baruch et al.: n=10, f=2 → s=4, z=Φ⁻¹(0.6)
    assert alie_z(10, 2) == pytest.approx(statistics.NormalDist().inv_cdf(0.6))
    assert _eq(alie(honest, n=10, f=2), {k: mean[k] - alie_z(10, 2) * std[k] for k in mean})
    # known estimate instead of updates
    assert _eq(alie(estimate=(mean, std), z=1.0), {k: mean[k] - std[k] for k in mean})
    with pytest.raises(ValueError, match=">= 2"):
        alie([honest[0]])
    # stays within the honest spread coordinate-wise when z is small
    out = alie(honest, z=0.5)
    stacked = torch.stack([h["w"] for h in honest])
    assert bool(((out["w"] >= stacked.min(0).values) & (out["w"] <= stacked.max(0).values)).all())


def test_ipm_has_negative_inner_product_with_the_mean():
    honest = [{k: v + 1.0 for k, v in _update(s).items()} for s in range(4)]
    mean, _ = mean_std(honest)
    out = ipm(honest, epsilon=0.5)
    assert _eq(out, {k: -0.5 * mean[k] for k in mean})
    inner = sum((out[k] * mean[k]).sum() for k in mean)
    assert inner < 0
    assert _eq(Attack.IPM.apply(honest[0]), {k: -0.1 * v for k, v in honest[0].items()})


def test_label_flip():
    data = TaskData(torch.zeros(4, 2), torch.tensor([0, 1, 2, 9]))
    flipped = label_flip(data, 10)
    assert flipped.y.tolist() == [9, 8, 7, 0] and torch.equal(flipped.x, data.x)
    assert data.y.tolist() == [0, 1, 2, 9]
    assert Attack.LABEL_FLIP.apply(data, num_classes=10).y.tolist() == [9, 8, 7, 0]
    with pytest.raises(ValueError):
        Attack.LABEL_FLIP.apply(data)


def test_protocol_helpers():
    digest = bytes(range(32))
    bad = wrong_digest(digest, seed=3)
    assert len(bad) == 32 and bad != digest and bad == wrong_digest(digest, seed=3)
    g = garbage_blob(1000, seed=1)
    assert len(g) == 1000 and g == garbage_blob(1000, seed=1) and g != garbage_blob(1000, seed=2)
    u = _update()
    e = equivocation_update(u, seed=1)
    assert not _eq(e, u) and _eq(e, u, tol=0.1)


def test_adversary_parse_and_flags():
    adv = Adversary.parse("scaled:factor=20")
    assert adv.attack is Attack.SCALED and adv.params == {"factor": 20} and adv.poisons_update
    u = _update()
    assert _eq(adv.poison_update(u), {k: 20 * v for k, v in u.items()})
    assert Adversary.parse("silent").silent and not Adversary.parse("silent").poisons_update
    assert _eq(Adversary.parse("silent").poison_update(u), u)
    assert Adversary.parse("equivocate").equivocates
    assert Adversary.parse("garbage").sends_garbage
    assert len(Adversary.parse("garbage:size=77").garbage_blob(round=2)) == 77
    wv = Adversary.parse("wrong_vote")
    d = bytes(32)
    assert wv.votes_wrong and wv.vote_digest(d, round=1) != d
    assert Adversary.parse("sign_flip").vote_digest(d) == d
    lf = Adversary.parse("label_flip")
    data = TaskData(torch.zeros(2, 2), torch.tensor([0, 1]))
    assert lf.poisons_data and lf.poison_data(data, 2).y.tolist() == [1, 0]
    assert Adversary.parse("sign_flip").poison_data(data, 2) is data
    # ALIE includes the attacker's own update among the honest ones it knows
    others = [_update(s) for s in range(1, 4)]
    mean, std = mean_std([u, *others])
    assert _eq(Adversary.parse("alie:z=1").poison_update(u, honest=others), {k: mean[k] - std[k] for k in mean})
    # per-round randomness differs, same round repeats
    gn = Adversary.parse("gaussian:std=2", seed=5)
    assert _eq(gn.poison_update(u, round=1), gn.poison_update(u, round=1), tol=0)
    assert not _eq(gn.poison_update(u, round=1), gn.poison_update(u, round=2))


@pytest.mark.parametrize("text", ["nope", "scaled:factor", "scaled:factor=abc"])
def test_adversary_parse_errors(text):
    with pytest.raises(ValueError):
        Adversary.parse(text)


def test_one_implementation_configured_by_strength():
    """Peers (textbook strengths) and the simulator (its own, docs/robustness.md) run the same attack code."""
    from peer.byzantine.adversary import DEFAULT_STRENGTHS, Strengths
    from simulation.attacks import STRENGTHS, forge_update

    u = _update()
    assert _eq(Adversary(Attack.SIGN_FLIP).poison_update(u), {k: -v for k, v in u.items()})
    strong = Adversary(Attack.SCALED, strengths=Strengths(scale_factor=20.0))
    assert _eq(strong.poison_update(u), {k: 20 * v for k, v in u.items()})
    assert _eq(Adversary.parse("scaled:factor=3").poison_update(u), {k: 3 * v for k, v in u.items()})
    assert _eq(forge_update("sign_flip", u, [], n=5, f=1, seed=0), {k: -4 * v for k, v in u.items()})
    assert _eq(forge_update("scaled", u, [], n=5, f=1, seed=0), {k: 20 * v for k, v in u.items()})
    expected = gaussian(u, std=STRENGTHS.gaussian_std, seed=7)
    assert _eq(forge_update("gaussian", u, [], n=5, f=1, seed=7), expected, tol=0)
    assert _eq(forge_update("alie", u, [_update(1)], n=5, f=1, seed=0), u, tol=0)  # too few to estimate from
    assert STRENGTHS.spec("sign_flip") == "sign_flip:factor=4" and STRENGTHS.spec("alie") == "alie"
    assert DEFAULT_STRENGTHS.spec("scaled:factor=2") == "scaled:factor=2"
    assert Adversary.parse(STRENGTHS.spec("scaled")).params == {"factor": 20}
