"""dedup+<rule>: near-identical updates share one vote — exact, deterministic, never merging honest spread,
never starving the inner rule, and not fooled by far-away attackers into merging honest updates."""
from __future__ import annotations

import numpy as np
import pytest

import consensus
from consensus import ModelSpec
from consensus.aggregators import RuleInput
from consensus.aggregators.compose import run_composed
from consensus.aggregators.dedup import dedup, honest_pair_median_rank
from consensus.auto_rule import resolve_rule
from consensus.feasibility import max_f, min_valid_updates

DEFAULT = "dedup+rescale+nnm+centered_clipping"


def _honest(seed: int, n: int, d: int = 400) -> list[np.ndarray]:
    """Heterogeneous honest updates: a common mean plus per-member noise of the same order."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d) * 2**14
    return [np.rint(mu + rng.standard_normal(d) * 2**14).astype(np.int32) for _ in range(n)]


def _run(rule: str, rows: list[np.ndarray], f: int):
    *pre, base = rule.split("+")
    return run_composed(pre, base, RuleInput(rows, [1] * len(rows), f), {})


def test_copies_become_one_row_and_every_copy_gets_its_score():
    honest = _honest(0, 14)
    attack = np.full(400, -2**13, dtype=np.int32)
    rows = [*honest, *[attack.copy() for _ in range(6)]]
    merged = dedup(RuleInput(rows, [1] * 20, 6))
    assert len(merged.rows) == 15
    assert merged.groups[-1] == (14, 15, 16, 17, 18, 19)
    assert np.array_equal(merged.rows[-1], attack)
    out = consensus.aggregate("dedup+trimmed_mean", [consensus.encode({"w": r / 2**20}) for r in rows], f=6)
    assert len(set(out.scores[14:])) == 1  # every copy receives its group's score


def test_a_copied_honest_update_counts_once():
    """mimic: f members copy one honest update; merged, the group is that update, exactly, once."""
    honest = _honest(1, 14)
    rows = [*honest, *[honest[3].copy() for _ in range(6)]]
    merged = dedup(RuleInput(rows, [1] * 20, 6))
    assert len(merged.rows) == 14
    assert np.array_equal(merged.rows[3], honest[3])
    plain = _run("trimmed_mean", honest, 6).values
    assert np.array_equal(_run("dedup+trimmed_mean", rows, 6).values, plain)


def test_near_copies_merge_to_their_exact_mean():
    honest = _honest(2, 14)
    rng = np.random.default_rng(2)
    base = np.full(400, 2**12, dtype=np.int64)
    near = [(base + rng.integers(-3, 4, size=400)).astype(np.int32) for _ in range(4)]
    merged = dedup(RuleInput([*honest, *near], [1] * 18, 4))
    assert merged.groups[-1] == (14, 15, 16, 17)
    total = np.sum(np.stack(near).astype(np.int64), axis=0)
    assert np.abs(merged.rows[-1].astype(np.int64) * 4 - total).max() <= 2  # the mean, rounded once


@pytest.mark.parametrize("seed", range(3))
def test_honest_spread_is_never_merged(seed):
    rows = _honest(seed, 20)
    merged = dedup(RuleInput(rows, [1] * 20, 6))
    assert len(merged.rows) == 20
    assert np.array_equal(_run(DEFAULT, rows, 6).values, _run("rescale+nnm+centered_clipping", rows, 6).values)


def test_far_attackers_cannot_inflate_the_reference_into_merging_honest_updates():
    """6 of 20 far-away, distinct rows make most pairwise distances huge; the reference is ranked among the
    honest pairs, so the 14 honest rows stay 14 rows."""
    honest = _honest(3, 14)
    rng = np.random.default_rng(3)
    far = [(rng.standard_normal(400) * 2**24).astype(np.int32) for _ in range(6)]
    merged = dedup(RuleInput([*honest, *far], [1] * 20, 6))
    assert len(merged.rows) == 20
    assert honest_pair_median_rank(20, 6) == (14 * 13 // 2 - 1) // 2


def test_merging_never_leaves_the_inner_rule_too_few_rows():
    """4 of 5 rows identical with f = 1: merged there would be 2 rows, fewer than rescale+nnm+centered_clipping
    needs (3), so nothing is merged and the round still aggregates."""
    honest = _honest(4, 1)
    rows = [*honest, *[np.full(400, 7, dtype=np.int32) for _ in range(4)]]
    composed = _run(DEFAULT, rows, 1)
    assert composed.members == [[i] for i in range(5)]
    assert np.array_equal(composed.values, _run("rescale+nnm+centered_clipping", rows, 1).values)


def _blobs(seed: int, n: int = 14, d: int = 3000) -> list[bytes]:
    rng = np.random.default_rng(seed)
    spec = ModelSpec({"w": (d,)})
    mu = rng.standard_normal(d) * 0.01
    honest = [consensus.encode({"w": mu + rng.standard_normal(d) * 0.01}, spec=spec) for _ in range(n - 4)]
    return [*honest, *[consensus.encode({"w": -0.1 * mu}, spec=spec)] * 4]


@pytest.mark.parametrize("rule", [DEFAULT, "dedup+trimmed_mean", "dedup+multi_krum", "dedup+arc+nnm+trimmed_mean"])
def test_permutation_and_threads(rule):
    blobs = _blobs(5)
    ref = consensus.aggregate(rule, blobs, f=4, workers=1)
    perm = list(np.random.default_rng(0).permutation(len(blobs)))
    shuffled = consensus.aggregate(rule, [blobs[i] for i in perm], f=4, workers=2)
    assert shuffled.aggregate == ref.aggregate
    assert [shuffled.scores[perm.index(i)] for i in range(len(blobs))] == list(ref.scores)


def test_feasibility():
    assert min_valid_updates("dedup", 3) == 4
    assert min_valid_updates(DEFAULT, 6) == 13
    assert min_valid_updates("dedup+fedavg", 2) == 3
    assert max_f(DEFAULT, 20) == 9
    assert resolve_rule("auto", 20, 6) == DEFAULT
