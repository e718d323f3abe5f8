"""The optimised attacks: their defining constraints, their determinism, and ByzFL's line search reproduced."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from peer.byzantine import optimised
from peer.byzantine.adversary import Adversary, Attack


def _honest(h: int = 8, d: int = 30, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [0.1 + rng.standard_normal(d) * 0.05 for _ in range(h)]


def _sq(a, b):
    return float(((a - b) ** 2).sum())


def test_min_max_and_min_sum_respect_their_bounds_and_are_tight():
    ref = _honest()
    mm = optimised.min_max(ref)
    bound = max(_sq(a, b) for a in ref for b in ref)
    assert max(_sq(mm, g) for g in ref) <= bound * (1 + 1e-9)
    ms = optimised.min_sum(ref)
    sums = min(sum(_sq(a, b) for b in ref) for a in ref)
    assert sum(_sq(ms, g) for g in ref) <= sums * (1 + 1e-9)
    mu = np.mean(ref, axis=0)
    assert np.linalg.norm(mm - mu) >= np.linalg.norm(ms - mu) > 0  # min-sum's constraint is the tighter one


def test_fang_trimmed_mean_goes_against_the_mean_beyond_the_extremes():
    ref = _honest()
    mal = optimised.fang(ref, f=2, rule="trimmed_mean", seed=1)
    stack = np.stack(ref)
    up = np.mean(stack, axis=0) > 0
    assert (mal[up] <= stack.min(0)[up]).all() and (mal[~up] >= stack.max(0)[~up]).all()
    assert np.array_equal(mal, optimised.fang(ref, f=2, rule="trimmed_mean", seed=1))


def test_fang_krum_gets_selected():
    ref = _honest(h=9)
    mal = optimised.fang(ref, f=3, rule="multi_krum")
    assert optimised._krum_picks_byzantine(np.stack(ref), mal, 3)


def _byzfl_line_search(evaluate, evals=20, start=0.0, delta=10.0, ratio=0.8):
    """ByzFL's Optimal_ALittleIsEnough._expansion_phase + _contraction_phase, transcribed from its source."""
    best_x, best_y = start, evaluate(start)
    remaining = evals - 1
    while remaining > 0:
        prop_x = best_x + delta
        prop_y = evaluate(prop_x)
        remaining -= 1
        if prop_y > best_y:
            best_x, best_y, delta = prop_x, prop_y, delta * 2
        else:
            delta *= ratio
            break
    while remaining > 0:
        prop_x = best_x + delta
        prop_y = evaluate(prop_x)
        remaining -= 1
        if prop_y > best_y:
            best_x, best_y = prop_x, prop_y
        delta *= ratio
    return best_x


@pytest.mark.parametrize("rule", ["trimmed_mean", "nnm+trimmed_mean", "centered_clipping"])
def test_alie_opt_and_ipm_opt_are_byzfl_line_searches_no_weaker_than_byzfl(rule):
    ref = _honest(h=14, seed=2)
    f = 4
    agg = optimised.rule_aggregator(rule, f)
    mu, sd = np.mean(ref, 0), np.std(ref, 0, ddof=1)
    for ours, craft in ((optimised.alie_opt(ref, f=f, aggregator=agg), lambda t: mu + t * sd),
                        (optimised.ipm_opt(ref, f=f, aggregator=agg), lambda t: -t * mu)):
        def harm(w):
            return np.linalg.norm(agg([*ref, *([w] * f)]) - mu)

        tau = _byzfl_line_search(lambda t, craft=craft: harm(craft(t)))
        assert np.allclose(ours, craft(tau))
        assert harm(ours) >= harm(craft(1.5)) - 1e-12  # no weaker than ByzFL's fixed default (τ = 1.5 / 2.0)


def test_mimic_copies_an_honest_update():
    ref = _honest()
    got = optimised.mimic(ref)
    assert any(np.array_equal(got, g) for g in ref)


@pytest.mark.parametrize("name", optimised.OPTIMISED)
def test_every_optimised_attack_through_the_adversary(name):
    like = {"a": torch.zeros(3, 4), "b": torch.zeros(5)}
    honest = [{"a": torch.randn(3, 4, generator=torch.Generator().manual_seed(i)),
               "b": torch.randn(5, generator=torch.Generator().manual_seed(100 + i))} for i in range(6)]
    adv = Adversary(Attack(name))
    out = adv.poison_update(like, round=1, honest=honest, n=8, f=2)
    assert {k: v.shape for k, v in out.items()} == {k: v.shape for k, v in like.items()}
    assert all(torch.isfinite(v).all() for v in out.values())
    again = adv.poison_update(like, round=1, honest=honest, n=8, f=2)
    assert all(torch.equal(out[k], again[k]) for k in out)


@pytest.mark.parametrize("name", ["alie_opt", "ipm_opt"])
def test_real_peer_attacks_tune_against_the_federation_rule_like_the_simulator(name):
    """A real Byzantine peer is told the federation's rule, so its line search targets that rule (not the mean),
    exactly as the simulator's peers do: one implementation, the same forged update."""
    from simulation.attacks import STRENGTHS, forge_update

    like = {"a": torch.zeros(3, 4), "b": torch.zeros(5)}
    honest = [{"a": torch.randn(3, 4, generator=torch.Generator().manual_seed(i)),
               "b": torch.randn(5, generator=torch.Generator().manual_seed(100 + i))} for i in range(7)]
    adv = Adversary(Attack(name), strengths=STRENGTHS)
    against_rule = adv.poison_update(like, round=1, honest=honest, n=10, f=2, rule="trimmed_mean")
    against_mean = adv.poison_update(like, round=1, honest=honest, n=10, f=2)
    assert any(not torch.equal(against_rule[k], against_mean[k]) for k in like)
    simulated = forge_update(name, like, [like, *honest], n=10, f=2, seed=adv._round_seed(1),
                             rule="trimmed_mean")
    assert all(torch.allclose(against_rule[k], simulated[k]) for k in like)
