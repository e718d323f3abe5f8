"""Consensus speed work must never change a result: golden hashes, chunk sizes, BLAS thread scoping.

`tests/consensus/consensus_golden.json` holds the aggregate hash, a digest of the scores and the selection of every rule
on a fixed-seed workload, recorded with the code as it was *before* the load work of issue 13 (chunks of at most
2**15 columns, a full sort per coordinate, multi-threaded BLAS). Regenerate only for a deliberate change of a
rule's definition:  python -m tests.consensus.test_consensus_threads --write
"""
from __future__ import annotations

import hashlib
import json
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import consensus
from consensus import ModelSpec, chunks, intmath

GOLDEN = Path(__file__).with_name("consensus_golden.json")
BASE_RULES = ["fedavg", "krum", "multi_krum", "trimmed_mean", "median", "bulyan"]
VARIANTS: list[tuple[str, dict[str, Any]]] = (
    [(rule, {}) for rule in BASE_RULES] + [(f"nnm+{rule}", {}) for rule in BASE_RULES]
    + [("krum", {"neighbours": "byzfl"}), ("multi_krum", {"m": 3}),
       ("multi_krum", {"weighting": "samples"}), ("fedavg", {"sample_cap": 40}), ("bulyan", {"neighbours": "byzfl"})]
)


def _floats(rng: np.random.Generator, scales: list[float], d: int) -> list[bytes]:
    spec = ModelSpec({"w": (d,)})
    return [consensus.encode({"w": rng.standard_normal(d) * s}, spec=spec) for s in scales]


def workload() -> dict[str, tuple[list[bytes], int, list[int]]]:
    """Named cells: (blobs, f, sample weights). Covers small |q|, limb-sized |q|, saturation and heavy ties."""
    rng = np.random.default_rng(2024)
    cells: dict[str, tuple[list[bytes], int, list[int]]] = {}
    cells["n7_small"] = (_floats(rng, [0.01] * 7, 3_000), 1, list(range(1, 8)))
    cells["n12_multi_chunk"] = (_floats(rng, [0.01] * 12, 70_000), 2, [10 * i + 3 for i in range(12)])
    cells["n12_limbs"] = (_floats(rng, [0.01] * 8 + [0.5, 3.0, 40.0, 900.0], 20_000), 2, [1] * 12)
    cells["n23_bulyan"] = (_floats(rng, [0.02] * 20 + [5.0, -1.0, 0.3], 9_000), 5, [1] * 23)
    cells["n50_wide"] = (_floats(rng, [0.01] * 45 + [1.0] * 5, 30_000), 5, [i % 7 + 1 for i in range(50)])
    spec = ModelSpec({"x": (4_000,)})
    ties = [consensus.encode_ints(spec, rng.integers(-3, 4, size=4_000)) for _ in range(11)]
    cells["n11_ties"] = (ties, 2, [2] * 11)
    return cells


def fingerprint(result: consensus.AggregationResult) -> dict[str, Any]:
    scores = json.dumps(list(result.scores)).encode()
    return {"aggregate": result.aggregate_update_hash.hex(), "scores": hashlib.sha256(scores).hexdigest()[:32],
            "selected": result.params.get("selected")}


def run_all(**kwargs: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for cell, (blobs, f, weights) in workload().items():
        for rule, params in VARIANTS:
            key = f"{cell}/{rule}" + "".join(f"/{k}={v}" for k, v in sorted(params.items()))
            try:
                res = consensus.aggregate(rule, blobs, f=f, weights=weights, **params, **kwargs)
            except consensus.AggregationError as exc:  # infeasible for this cell: the refusal is pinned too
                out[key] = {"error": type(exc).__name__}
                continue
            out[key] = fingerprint(res)
    return out


@pytest.fixture(scope="module")
def golden() -> dict[str, dict[str, Any]]:
    return json.loads(GOLDEN.read_text())


def test_golden_hashes_unchanged(golden):
    assert run_all() == golden


def _run_cells(cells: tuple[str, ...], workers: int) -> dict[str, dict[str, Any]]:
    every = workload()
    out = {}
    for cell in cells:
        blobs, f, weights = every[cell]
        for rule, params in VARIANTS:
            key = f"{cell}/{rule}" + "".join(f"/{k}={v}" for k, v in sorted(params.items()))
            out[key] = fingerprint(consensus.aggregate(rule, blobs, f=f, weights=weights, workers=workers, **params))
    return out


@pytest.mark.parametrize("plan", ["tiny_chunks_no_limbs", "one_chunk_all_limbs"])
def test_chunk_size_and_limb_split_never_change_a_hash(plan, golden, monkeypatch):
    """Force odd small chunks (and whole rows up to 2**26, so Gram chunks of a few columns) or a single chunk
    that is never certified, with every row split into limbs: aggregate bytes, scores and selections stay the
    golden ones."""
    if plan == "tiny_chunks_no_limbs":
        monkeypatch.setattr(chunks, "BLOCK_ELEMENTS", 1)
        monkeypatch.setattr(chunks, "MIN_COLUMNS", 97)
        monkeypatch.setattr(intmath, "SPLIT_ABOVE", 1 << 26)
        cells, workers = ("n7_small", "n12_limbs", "n11_ties"), 3
    else:
        monkeypatch.setattr(chunks, "BLOCK_ELEMENTS", 1 << 40)
        monkeypatch.setattr(intmath, "SPLIT_ABOVE", 0)
        monkeypatch.setattr(intmath, "CERTIFY_BELOW", 0.0)  # no chunk certified: every one takes the limb path
        cells, workers = ("n7_small", "n12_multi_chunk", "n12_limbs", "n11_ties"), 1
    got = _run_cells(cells, workers)
    assert got == {key: golden[key] for key in got}


def test_gram_plan_chunks_follow_the_magnitude_bound():
    split, per_product, chunk = intmath.gram_plan([1 << 15] * 10, 10**9)
    assert split == [] and chunk == chunks.columns_for(10) > 1 << 15  # memory, not exactness, binds
    split, per_product, chunk = intmath.gram_plan([1 << 10, 1 << 30, 5], 10**9)
    assert split == [1] and per_product == ((1 << 16) - 1) ** 2 and chunk * per_product <= 1 << 53
    split, per_product, chunk = intmath.gram_plan([1 << 20, 3], 10**9)
    assert split == [] and per_product == 1 << 40 and chunk == min(1 << 13, chunks.columns_for(2))


@pytest.mark.parametrize("top", [2**26 - 1, 2**26, 3 * 2**25, 2**31 - 1])
def test_gram_certificate_at_the_2_53_boundary(top):
    """Chunk diagonals just below, at and above 2**53 (certified, or recomputed with limbs): always exact."""
    rng = np.random.default_rng(top)
    rows = [np.array([top, -top, 5], dtype=np.int32), np.array([top, top - 1, -7], dtype=np.int32),
            rng.integers(-top, top, size=3, dtype=np.int64).astype(np.int32), np.zeros(3, dtype=np.int32)]
    expect = [[sum(int(a) * int(b) for a, b in zip(x, y)) for y in rows] for x in rows]
    assert intmath.gram(rows, workers=1).tolist() == expect


def _blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_blas_single_threaded_inside_and_restored_after():
    before = _blas_threads()
    seen: list[list[int]] = []
    barrier = threading.Barrier(2)

    def inside() -> None:
        with chunks.single_threaded_blas():
            barrier.wait()  # both threads inside at once: one limit, one restore
            seen.append(_blas_threads())
            barrier.wait()

    threads = [threading.Thread(target=inside) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 2 and all(n == 1 for s in seen for n in s)
    assert _blas_threads() == before
    consensus.aggregate("krum", workload()["n7_small"][0], f=1, workers=2)
    assert _blas_threads() == before


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.consensus.test_consensus_threads --write")
    GOLDEN.write_text(json.dumps(run_all(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")


def test_blas_loaded_after_the_first_aggregation_is_limited_too():
    """Regression: the library scan was cached at the first aggregation, so a BLAS loaded later (scipy's, via
    scikit-learn tasks) kept its threads inside consensus. A fresh interpreter controls the load order."""
    script = (
        "from consensus import chunks\n"
        "with chunks.single_threaded_blas():\n    pass\n"
        "import scipy.linalg, sklearn, torch\n"
        "import json\nfrom threadpoolctl import threadpool_info\n"
        "with chunks.single_threaded_blas():\n"
        "    print(json.dumps([lib['num_threads'] for lib in threadpool_info() if lib['user_api'] == 'blas']))\n"
    )
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    threads = json.loads(out.stdout)
    assert len(threads) >= 2 and all(n == 1 for n in threads), threads


def test_library_scan_is_reused_until_something_new_is_imported():
    """The scan of loaded libraries ran at every aggregation step, several per aggregation, and dominated the small
    aggregations of an optimised attack's line search. It is kept while nothing new is imported, redone after."""
    with chunks.single_threaded_blas():
        pass
    first = chunks._blas_controller
    consensus.aggregate("krum", workload()["n7_small"][0], f=1, workers=2)
    assert chunks._blas_controller is first
    sys.modules["_fedledger_probe_module"] = type(sys)("_fedledger_probe_module")
    try:
        with chunks.single_threaded_blas():
            pass
        assert chunks._blas_controller is not first
    finally:
        del sys.modules["_fedledger_probe_module"]
