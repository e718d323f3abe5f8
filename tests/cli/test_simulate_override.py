"""SimEngine(aggregate_override=...): the bench hook that runs another definition of a rule on our rule's inputs.

It must change nothing when it returns our own aggregate, and must see exactly what consensus saw. The float
definitions of bench.byzfl_rules must agree with our exact rules where the definitions are the same.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

import consensus
from bench.byzfl_rules import ByzflRule, arc, median, nnm, trimmed_mean
from consensus.aggregators import PRE_AGGREGATORS, RuleInput
from consensus.commitment import CommittedUpdate
from consensus.round_outcome import RoundOutcome
from simulation.config import SimConfig
from simulation.engine import SimEngine

SMALL = dict(task="digits", peers=6, byzantine=1, attack="sign_flip", rule="trimmed_mean", rounds=2, local_epochs=1)


def test_identity_override_changes_nothing_and_sees_consensus_inputs() -> None:
    seen: list[tuple[int, int, int]] = []

    def ours(round: int, committed: Sequence[CommittedUpdate], f: int, outcome: RoundOutcome) -> bytes:
        seen.append((round, len(committed), f))
        assert sorted(u.member for u in committed) == sorted(outcome.peers)
        return outcome.aggregate_update

    plain = SimEngine(SimConfig(**SMALL)).run()
    hooked = SimEngine(SimConfig(**SMALL), aggregate_override=ours).run()
    assert hooked.final_model_hash == plain.final_model_hash
    assert seen == [(1, 6, 1), (2, 6, 1)]


def test_override_result_is_what_the_federation_applies() -> None:
    def nothing(round: int, committed: Sequence[CommittedUpdate], f: int, outcome: RoundOutcome) -> bytes:
        spec = consensus.decode_ints(outcome.aggregate_update).spec
        return consensus.encode_ints(spec, np.zeros(spec.num_params, dtype=np.int32))

    engine = SimEngine(SimConfig(**SMALL), aggregate_override=nothing)
    result = engine.run()
    assert result.final_model_hash == consensus.update_hash(engine.genesis_model).hex()


def test_attack_aggregator_is_what_the_optimised_attack_searches_against() -> None:
    """With another definition aggregating, ipm_opt must search against that definition (the symmetric run),
    with the f the rule runs with; not against our rule of the same name."""
    calls: list[tuple[int, int]] = []

    def mean(vectors: Sequence[np.ndarray], f: int) -> np.ndarray:
        calls.append((len(vectors), f))
        return np.mean(np.stack(vectors), axis=0)

    cfg = {**SMALL, "attack": "ipm_opt"}
    plain = SimEngine(SimConfig(**cfg)).run()
    hooked = SimEngine(SimConfig(**cfg), attack_aggregator=mean).run()
    assert calls and all(c == (6, 1) for c in calls)  # 5 honest + the f=1 forged copy
    assert hooked.final_model_hash != plain.final_model_hash


def _ints(seed: int, n: int = 10, d: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d)) * 1000
    x[:2] *= 20
    return [np.rint(r).astype(np.int32) for r in x]


@pytest.mark.parametrize("seed", range(3))
def test_float_definitions_match_ours_where_the_definition_is_the_same(seed: int) -> None:
    rows = _ints(seed)
    x = np.stack(rows).astype(np.float64)
    blobs = [consensus.encode_ints(consensus.ModelSpec({"w": (30,)}), r, scale_bits=0) for r in rows]
    for rule, ref in (("trimmed_mean", trimmed_mean(x, 2)), ("median", median(x, 2)),
                      ("nnm+trimmed_mean", trimmed_mean(nnm(x, 2), 2))):
        ours = consensus.decode_ints(consensus.aggregate(rule, blobs, f=2).aggregate).values
        assert np.abs(ours - ref).max() <= 1.0, rule  # one rounding (nnm: two)
    ours_arc = np.stack(PRE_AGGREGATORS["arc"](RuleInput(rows, [1] * 10, 2)).rows)
    assert np.abs(ours_arc - arc(x, 2)).max() <= 1.0
    assert np.allclose(ByzflRule("arc+nnm+trimmed_mean", 0)(x, 2), trimmed_mean(nnm(arc(x, 2), 2), 2))


def test_byzfl_centered_clipping_keeps_its_previous_output() -> None:
    x = np.stack(_ints(0)).astype(np.float64)
    cc = ByzflRule("centered_clipping", 0)
    first = cc(x, 2)
    assert np.allclose(first, np.mean(x * np.minimum(1, 100.0 / np.linalg.norm(x, axis=1))[:, None], axis=0))
    second = cc(x, 2)
    diff = x - first
    step = np.mean(diff * np.minimum(1, 100.0 / np.linalg.norm(diff, axis=1))[:, None], axis=0)
    assert np.allclose(second, first + step)
