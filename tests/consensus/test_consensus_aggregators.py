"""Aggregators: exact definitions, determinism (threads, permutation), robustness, Flower differential."""
from __future__ import annotations

import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import consensus
from consensus import AggregationError, ModelSpec
from consensus.aggregators.fedavg import weighted_mean
from consensus.codec import Q_MAX
from consensus.intmath import round_div, sq_distances

RULES = ["fedavg", "krum", "multi_krum", "trimmed_mean", "median", "bulyan"]
ALL_RULES = RULES + [f"nnm+{r}" for r in RULES]
SPEC = ModelSpec({"w": (40,), "b": (7,)})


def updates(n: int, seed: int = 0, scale: float = 0.01, d: int | None = None) -> list[bytes]:
    rng = np.random.default_rng(seed)
    if d is not None:
        spec = ModelSpec({"w": (d,)})
        return [consensus.encode({"w": rng.standard_normal(d) * scale}, spec=spec) for _ in range(n)]
    return [consensus.encode({"w": rng.standard_normal(40) * scale, "b": rng.standard_normal(7) * scale})
            for _ in range(n)]


def ints(blob: bytes) -> np.ndarray:
    return consensus.decode_ints(blob).values.astype(np.int64)


def test_round_div_half_even():
    num = np.array([5, 15, 25, -5, -15, 7, -7, 1, -1, 3])
    assert round_div(num, 10).tolist() == [0, 2, 2, 0, -2, 1, -1, 0, 0, 0]
    assert round_div(np.array([3, -3, 1, -1]), 2).tolist() == [2, -2, 0, 0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-2**62, 2**62), min_size=1, max_size=20) | st.lists(st.integers(-2**53, 2**53), min_size=1),
       st.integers(1, 2**40) | st.integers(1, 64))
def test_round_div_matches_fractions(values, den):
    assert round_div(np.array(values, dtype=np.int64), den).tolist() == [round(Fraction(v, den)) for v in values]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(-Q_MAX, Q_MAX), min_size=3, max_size=6), st.integers(1, 4), st.integers(1, 2**40))
def test_sq_distances_exact_limb_path(values, dim, big_weight):
    rows = [np.full(dim, v, dtype=np.int32) for v in values]
    dist = sq_distances(rows)
    for i, a in enumerate(values):
        for j, b in enumerate(values):
            assert dist[i][j] == dim * (a - b) ** 2
    weights = [big_weight] + [1] * (len(values) - 1)
    mean = weighted_mean(rows, weights, 1)
    exact = Fraction(sum(w * v for w, v in zip(weights, values)), sum(weights))
    assert int(mean[0]) == round(exact)  # Python round() is half to even on Fractions


def test_fedavg_exact_weighted_with_cap():
    blobs = updates(5)
    res = consensus.aggregate("fedavg", blobs, f=0, weights=[10, 20, 30, 40, 1000], sample_cap=50)
    assert res.scores == (10, 20, 30, 40, 50)
    q = np.stack([ints(b) for b in blobs])
    w = [10, 20, 30, 40, 50]
    expected = [round(Fraction(int(sum(wi * q[i, k] for i, wi in enumerate(w))), sum(w))) for k in range(q.shape[1])]
    assert ints(res.aggregate).tolist() == expected


def test_median_and_trimmed_mean_definitions():
    spec = ModelSpec({"x": (1,)})
    blobs = [consensus.encode_ints(spec, np.array([v])) for v in (1, 2, 4, 100, -100, 3)]
    assert ints(consensus.aggregate("median", blobs, f=2).aggregate).tolist() == [2]  # (2+3)/2 -> 2 (even)
    assert ints(consensus.aggregate("median", blobs[:5], f=2).aggregate).tolist() == [2]
    tm = consensus.aggregate("trimmed_mean", blobs, f=1)
    assert ints(tm.aggregate).tolist() == [2]  # (1+2+3+4)/4 = 2.5 -> 2
    assert tm.scores == (1, 1, 1, 0, 0, 1)


def test_krum_neighbour_conventions_and_ties():
    spec = ModelSpec({"x": (1,)})
    blobs = [consensus.encode_ints(spec, np.array([v])) for v in (0, 0, 10, 10, 1000)]
    res = consensus.aggregate("krum", blobs, f=1)
    assert res.scores == (1, 0, 0, 0, 0)  # tie between 0 and 1 (and 2, 3) -> lowest index
    assert res.params["neighbours"] == "paper"
    # k = n-f-2 = 2 vs n-f-1 = 3 neighbours
    blobs = [consensus.encode_ints(spec, np.array([v])) for v in (2, 4, 8, 18, 24, 25, 27)]
    assert consensus.aggregate("krum", blobs, f=2).params["selected"] == [4]  # k = 3
    assert consensus.aggregate("krum", blobs, f=2, neighbours="flower").params["selected"] == [4]
    assert consensus.aggregate("krum", blobs, f=2, neighbours="byzfl").params["selected"] == [3]  # k = 4


def test_multi_krum_weighting():
    blobs = updates(7)
    uni = consensus.aggregate("multi_krum", blobs, f=1, m=3)
    smp = consensus.aggregate("multi_krum", blobs, f=1, m=3, weighting="samples", weights=[1, 2, 3, 4, 5, 6, 7])
    assert uni.params["selected"] == smp.params["selected"] and sum(uni.scores) == 3
    sel = uni.params["selected"]
    q = np.stack([ints(blobs[i]) for i in sel])
    assert ints(uni.aggregate).tolist() == round_div(q.sum(axis=0), 3).tolist()
    w = np.array([i + 1 for i in sel])
    assert ints(smp.aggregate).tolist() == round_div((q * w[:, None]).sum(axis=0), int(w.sum())).tolist()


@pytest.mark.parametrize("rule,n_min", [("krum", 5), ("multi_krum", 5), ("trimmed_mean", 3), ("median", 3),
                                        ("bulyan", 7), ("nnm+krum", 5)])
def test_too_few_inputs(rule, n_min):
    with pytest.raises(AggregationError, match="needs"):
        consensus.aggregate(rule, updates(n_min - 1), f=1)
    consensus.aggregate(rule, updates(n_min), f=1)
    # excluded blobs do not count towards n
    with pytest.raises(AggregationError):
        consensus.aggregate(rule, updates(n_min - 1) + [None, b"garbage"], f=1)


def test_bad_rule_and_params():
    blobs = updates(7)
    for kwargs in ({"rule": "krumm"}, {"rule": "nnm+nnm"}, {"rule": "krum", "neighbours": "x"},
                   {"rule": "krum", "m": 2}, {"rule": "multi_krum", "m": 7}, {"rule": "fedavg", "f": -1},
                   {"rule": "fedavg", "weights": [1, 2]}, {"rule": "fedavg", "weights": [0] * 7},
                   {"rule": "multi_krum", "weighting": "x"}):
        kwargs = {"f": 1, **kwargs}
        with pytest.raises(AggregationError):
            consensus.aggregate(updates=blobs, **kwargs)
    with pytest.raises(AggregationError, match="no valid"):
        consensus.aggregate("fedavg", [None, b"x"], f=0)


@pytest.mark.parametrize("rule", ALL_RULES)
def test_invalid_blobs_excluded_never_crash(rule):
    good = updates(9)
    blobs = good[:4] + [None, b"FLCT", good[0][:-1], consensus.encode({"other": np.zeros(3)})] + good[4:]
    res = consensus.aggregate(rule, blobs, f=1)
    assert res.excluded == (4, 5, 6, 7)
    assert all(res.scores[i] == 0 for i in res.excluded)
    clean = consensus.aggregate(rule, good, f=1)
    assert res.aggregate == clean.aggregate
    assert [s for i, s in enumerate(res.scores) if i not in res.excluded] == list(clean.scores)
    with_spec = consensus.aggregate(rule, blobs, f=1, spec=SPEC, scale_bits=20)
    assert with_spec.aggregate == clean.aggregate


def test_majority_layout_wins_without_spec():
    good = updates(6)
    odd = consensus.encode({"w": np.zeros(40), "b": np.zeros(7)}, scale_bits=16)
    res = consensus.aggregate("median", [odd] + good, f=1)
    assert res.excluded == (0,)


@pytest.mark.parametrize("rule", ["fedavg", "trimmed_mean", "median", "nnm+median", "nnm+trimmed_mean"])
def test_symmetric_rules_permutation_invariant(rule):
    blobs = updates(11, seed=3)
    base = consensus.aggregate(rule, blobs, f=2)
    rng = np.random.default_rng(5)
    for _ in range(3):
        perm = rng.permutation(len(blobs))
        res = consensus.aggregate(rule, [blobs[i] for i in perm], f=2)
        assert res.aggregate == base.aggregate
        assert res.scores == tuple(base.scores[i] for i in perm)


@pytest.mark.parametrize("rule", RULES)
def test_same_bytes_with_1_and_2_workers_and_threads(rule):
    blobs = updates(11, seed=4, d=100_000)
    results = set()
    for threads in (1, 2):
        torch.set_num_threads(threads)
        try:
            from threadpoolctl import threadpool_limits
        except ImportError:  # pragma: no cover
            threadpool_limits = None
        ctx = threadpool_limits(limits=threads) if threadpool_limits else None
        try:
            results.add(consensus.aggregate(rule, blobs, f=2, workers=threads).aggregate)
        finally:
            if ctx is not None:
                ctx.unregister() if hasattr(ctx, "unregister") else None
    assert len(results) == 1


SCRIPT = """
import sys, numpy as np, consensus
from consensus import ModelSpec
rng = np.random.default_rng(7)
spec = ModelSpec({"w": (70000,)})
blobs = [consensus.encode({"w": rng.standard_normal(70000) * s}, spec=spec) for s in [0.01] * 9 + [3.0, 900.0]]
for rule in %r:
    print(rule, consensus.update_hash(consensus.aggregate(rule, blobs, f=2).aggregate).hex())
"""


def test_same_hash_across_processes_with_1_and_2_blas_threads():
    outs = []
    for threads in ("1", "2"):
        env = {"OMP_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
               "PATH": "/usr/bin:/bin"}
        outs.append(subprocess.run([sys.executable, "-c", SCRIPT % (ALL_RULES,)], env=env, check=True,
                                   capture_output=True, text=True, cwd=__import__("os").getcwd()).stdout)
    assert outs[0] == outs[1] and outs[0].count("\n") == len(ALL_RULES)


@pytest.mark.parametrize("attack", ["sign_flip", "huge"])
def test_robust_rules_resist_f_attackers_fedavg_does_not(attack):
    rng = np.random.default_rng(11)
    n, f, d = 15, 3, 500
    honest_mean = rng.standard_normal(d) * 0.1
    honest = [honest_mean + rng.standard_normal(d) * 0.01 for _ in range(n - f)]
    bad = [(-20 * h if attack == "sign_flip" else h + 1000.0) for h in honest[:f]]
    blobs = [consensus.encode({"w": u}) for u in bad + honest]
    target = np.mean(honest, axis=0)

    def err(rule: str) -> float:
        out = consensus.decode(consensus.aggregate(rule, blobs, f=f).aggregate)["w"].numpy()
        return float(np.linalg.norm(out - target) / np.linalg.norm(target))

    for rule in ("krum", "multi_krum", "trimmed_mean", "median", "bulyan", "nnm+median", "nnm+trimmed_mean"):
        assert err(rule) < 0.3, rule
    assert err("fedavg") > 1.0


# --- differential tests against Flower ---------------------------------------------------------------
flwr_agg = pytest.importorskip("flwr.server.strategy.aggregate")


def flower_inputs(blobs):
    return [([consensus.decode(b)[k].numpy() for k in ("b", "w")], 1) for b in blobs]


@pytest.mark.parametrize("seed", range(5))
def test_flower_same_krum_choice(seed):
    blobs = updates(12, seed=seed)
    chosen = flwr_agg.aggregate_krum(flower_inputs(blobs), num_malicious=2, to_keep=0)
    ours = consensus.aggregate("krum", blobs, f=2)
    mine = consensus.decode(ours.aggregate)
    assert all(np.array_equal(c, mine[k].numpy()) for c, k in zip(chosen, ("b", "w")))


@pytest.mark.parametrize("seed", range(3))
def test_flower_trimmed_mean_and_median_within_quantisation(seed):
    blobs = updates(10, seed=seed, scale=0.3)
    inputs = flower_inputs(blobs)
    bound = 2.0**-20 / 2 + 1e-7  # our rounding + Flower's float32 mean error
    theirs = flwr_agg.aggregate_trimmed_avg(inputs, proportiontocut=0.2)  # int(0.2*10) = 2 per side
    ours = consensus.decode(consensus.aggregate("trimmed_mean", blobs, f=2).aggregate)
    for t, k in zip(theirs, ("b", "w")):
        assert np.max(np.abs(t - ours[k].numpy())) <= bound
    theirs = flwr_agg.aggregate_median(inputs)
    ours = consensus.decode(consensus.aggregate("median", blobs, f=2).aggregate)
    for t, k in zip(theirs, ("b", "w")):
        assert np.max(np.abs(t - ours[k].numpy())) <= bound


def test_flower_multi_krum_sample_weighted_selection():
    blobs = updates(9, seed=2)
    inputs = [(arrs, w) for (arrs, _), w in zip(flower_inputs(blobs), range(1, 10))]
    theirs = flwr_agg.aggregate_krum(inputs, num_malicious=1, to_keep=4)
    ours = consensus.decode(consensus.aggregate("multi_krum", blobs, f=1, m=4, weighting="samples",
                                                weights=list(range(1, 10))).aggregate)
    for t, k in zip(theirs, ("b", "w")):
        assert np.max(np.abs(t - ours[k].numpy())) <= 2.0**-20


def reference_bulyan(values: list[list[int]], f: int) -> tuple[list[int], list[int]]:
    """Brute-force Bulyan in Python ints, straight from the definition in bulyan.py."""
    n = len(values)
    dist = [[sum((a - b) ** 2 for a, b in zip(u, v)) for v in values] for u in values]
    remaining, selected = list(range(n)), []
    for _ in range(n - 2 * f):
        k = min(len(remaining) - 1, max(1, len(remaining) - f - 2))
        score = {i: sum(sorted(dist[i][j] for j in remaining if j != i)[:k]) for i in remaining}
        best = min(remaining, key=lambda i: (score[i], i))
        remaining.remove(best)
        selected.append(best)
    theta, beta = n - 2 * f, n - 4 * f
    out = []
    for k in range(len(values[0])):
        col = sorted(values[i][k] for i in selected)
        centre2 = col[(theta - 1) // 2] + col[theta // 2]
        kept = sorted(col, key=lambda v: (abs(2 * v - centre2), v))[:beta]
        out.append(round(Fraction(sum(kept), beta)))
    return sorted(selected), out


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([(7, 1), (8, 1), (11, 2), (12, 2)]), st.integers(2, 300))
def test_bulyan_matches_reference(seed, nf, spread):
    n, f = nf
    rng = np.random.default_rng(seed)
    values = rng.integers(-spread, spread, size=(n, 6)).tolist()
    spec = ModelSpec({"x": (6,)})
    res = consensus.aggregate("bulyan", [consensus.encode_ints(spec, np.array(v)) for v in values], f=f)
    selected, expected = reference_bulyan(values, f)
    assert res.params["selected"] == selected
    assert ints(res.aggregate).tolist() == expected
