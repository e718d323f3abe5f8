"""rescale+<rule>: the inner rule's aggregate lengthened to the robust 1-D mean of the updates along it —
exact, deterministic, permutation-invariant, bounded by the honest updates whatever f members send."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import consensus
from consensus import ModelSpec
from consensus.aggregators import RuleInput
from consensus.aggregators.compose import run_composed
from consensus.errors import AggregationError
from consensus.feasibility import max_f, min_valid_updates

SCALE = 2.0**20


def _run(rule: str, rows: list[np.ndarray], f: int) -> np.ndarray:
    """The composition on rows, as `consensus.aggregate` runs it (without the codec)."""
    *pre, base = rule.split("+")
    return run_composed(pre, base, RuleInput(rows, [1] * len(rows), f), {}).values


def _ipm_rows(seed: int, n: int = 20, f: int = 6, d: int = 500) -> tuple[list[np.ndarray], np.ndarray]:
    """Heterogeneous honest updates around mu, and f identical IPM updates -0.1 mu."""
    rng = np.random.default_rng(seed)
    mu = rng.standard_normal(d) * 0.01
    honest = [mu + rng.standard_normal(d) * 0.05 for _ in range(n - f)]
    rows = [np.rint(r * SCALE).astype(np.int32) for r in [*honest, *[-0.1 * mu] * f]]
    return rows, mu * SCALE


def reference(rows: list[np.ndarray], inner: np.ndarray, f: int) -> np.ndarray:
    """Float definition: a * clamp(trimmed_mean_f(<x_i, a>) / |a|^2, 1, 4)."""
    a = inner.astype(np.float64)
    proj = np.sort(np.stack(rows).astype(np.float64) @ a)
    t = proj[f:len(rows) - f].mean() / (a @ a)
    return a * min(4.0, max(1.0, t))


@pytest.mark.parametrize("inner", ["trimmed_mean", "median", "nnm+centered_clipping", "arc+nnm+trimmed_mean"])
@pytest.mark.parametrize("seed", range(3))
def test_matches_the_float_definition(inner, seed):
    rows, _ = _ipm_rows(seed)
    a = _run(inner, rows, 6)
    ours = _run(f"rescale+{inner}", rows, 6)
    want = reference(rows, a, 6)
    assert np.abs(ours - want).max() <= 1.0  # one rounding; the fixed-point factor errs below 2**-30 relative


def test_restores_the_length_under_ipm():
    rows, mu = _ipm_rows(0)
    for inner in ("trimmed_mean", "nnm+centered_clipping", "arc+nnm+trimmed_mean"):
        plain = _run(inner, rows, 6).astype(np.float64) @ mu / (mu @ mu)
        rescaled = _run(f"rescale+{inner}", rows, 6).astype(np.float64) @ mu / (mu @ mu)
        # the shrunk robust aggregate is lengthened along mu: x1.99, x1.16, x1.23 on this input (nnm+cc was x1.21
        # while centered clipping's radius was the (n-f)-th distance; at the (n-2f)-th it points a little off mu)
        assert rescaled > plain * 1.1, inner


def test_never_shortens_and_keeps_a_zero_aggregate():
    rows = [np.full(10, v, dtype=np.int32) for v in (-5, -4, -3, -2, -1, 100)]
    a = _run("median", rows, 1)
    assert np.array_equal(_run("rescale+median", rows, 1), a)  # t would be below 1: kept
    zero = [np.zeros(10, dtype=np.int32)] * 5
    assert not _run("rescale+trimmed_mean", zero, 1).any()


def _blobs(seed: int, n: int = 12, d: int = 3000) -> list[bytes]:
    rng = np.random.default_rng(seed)
    spec = ModelSpec({"w": (d,)})
    mu = rng.standard_normal(d) * 0.01
    return [consensus.encode({"w": mu + rng.standard_normal(d) * s}, spec=spec)
            for s in [0.05] * (n - 2) + [0.5, 2.0]]


@pytest.mark.parametrize("rule", ["rescale+nnm+centered_clipping", "rescale+arc+nnm+trimmed_mean",
                                  "rescale+multi_krum", "arc+rescale+median"])
def test_permutation_and_threads(rule):
    blobs = _blobs(3)
    ref = consensus.aggregate(rule, blobs, f=2, workers=1)
    perm = list(np.random.default_rng(0).permutation(len(blobs)))
    shuffled = consensus.aggregate(rule, [blobs[i] for i in perm], f=2, workers=2)
    assert shuffled.aggregate == ref.aggregate
    assert [shuffled.scores[perm.index(i)] for i in range(len(blobs))] == list(ref.scores)
    inner = consensus.aggregate(rule.replace("rescale+", "", 1), blobs, f=2, workers=1)
    assert ref.scores == inner.scores  # scores are the inner rule's


def test_same_bytes_in_fresh_processes_with_other_thread_counts():
    code = ("import consensus; from tests.consensus.test_consensus_rescale import _blobs;"
            "a = consensus.aggregate('rescale+nnm+centered_clipping', _blobs(5, n=14), f=3);"
            "print(a.aggregate_update_hash.hex(), a.scores)")
    outs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"OMP_NUM_THREADS": t, "OPENBLAS_NUM_THREADS": t, "PATH": "/usr/bin:/bin",
                                "PYTHONPATH": "."}).stdout for t in ("1", "2")}
    assert len(outs) == 1


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(5, 12), byz_scale=st.sampled_from([0.0, 1e-3, 1.0, 1e3]),
       noise=st.booleans())
def test_parallel_to_the_inner_aggregate_and_bounded_by_the_honest_updates(seed, n, byz_scale, noise):
    """Whatever f members send (copies, noisy copies, huge or tiny), the output is the inner aggregate times
    t in [1, 4], and its component along the aggregate is at most the largest honest one."""
    rng = np.random.default_rng(seed)
    f = (n - 1) // 2
    d = 30
    honest = rng.integers(-2**16, 2**16, size=(n - f, d))
    byz = np.tile(rng.integers(-2**16, 2**16, size=d), (f, 1)) * byz_scale
    if noise:
        byz = byz + rng.integers(-50, 50, size=byz.shape)
    rows = [np.clip(r, -2**31 + 1, 2**31 - 1).astype(np.int32) for r in [*honest, *byz]]
    for inner in ("trimmed_mean", "median"):
        a = _run(inner, rows, f).astype(np.float64)
        out = _run(f"rescale+{inner}", rows, f).astype(np.float64)
        if not a.any():
            assert not out.any()
            continue
        t = (out @ a) / (a @ a)
        assert 1.0 - 1e-6 <= t <= 4.0 + 1e-6
        assert np.abs(out - t * a).max() <= 1.0  # parallel, up to one rounding per coordinate
        along = honest.astype(np.float64) @ a / np.sqrt(a @ a)
        assert np.sqrt(out @ out) <= max(np.sqrt(a @ a), along.max()) + np.sqrt(d)


def test_feasibility():
    assert min_valid_updates("rescale", 3) == 7
    assert min_valid_updates("rescale+nnm+centered_clipping", 6) == 13
    assert min_valid_updates("rescale+multi_krum", 2) == 7
    assert max_f("rescale+nnm+centered_clipping", 20) == 9
    with pytest.raises(AggregationError):
        consensus.aggregate("rescale+fedavg", _blobs(0, n=6), f=3)  # the 1-D trimmed mean needs n > 2f
