"""Consensus speed work must never change a result: golden hashes, chunk sizes, BLAS thread scoping.

`tests/consensus/consensus_golden.json` holds the aggregate hash, a digest of the scores and the selection of every rule
on a fixed-seed workload, recorded with the code as it was *before* the load work of issue 13 (chunks of at most
2**15 columns, a full sort per coordinate, multi-threaded BLAS). Regenerate only for a deliberate change of a
rule's definition:  python -m tests.test_consensus_threads --write
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import consensus
from consensus import ModelSpec

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


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        raise SystemExit("usage: python -m tests.test_consensus_threads --write")
    GOLDEN.write_text(json.dumps(run_all(), indent=1, sort_keys=True) + "\n")
    print(f"wrote {GOLDEN}")
