"""Contribution scores: attackers copying one update, or pointing away from the aggregate, earn (almost) nothing."""
from __future__ import annotations

import hashlib

import numpy as np

import consensus
from consensus.commitment import Commitment, CommittedUpdate
from consensus.rewards import contribution_scores
from consensus.round_outcome import compute_round_outcome

SCALE = 2.0**20


def _ints(x: np.ndarray) -> np.ndarray:
    return np.rint(x * SCALE).astype(np.int32)


def _honest(n: int, d: int = 50, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [_ints(0.1 + rng.standard_normal(d) * 0.02) for _ in range(n)]


def test_copies_share_one_score():
    rows = _honest(6)
    alie = _ints(np.full(50, 0.09))
    all_rows = rows + [alie] * 3
    agg = _ints(np.full(50, 0.1))
    scores = contribution_scores(all_rows, agg, [1] * 9)
    assert scores[6] == scores[7] == scores[8] > 0
    assert 3 * scores[6] <= max(scores[:6])  # the three copies together earn about one member's share


def test_near_copies_share_too_and_opposites_earn_nothing():
    rows = _honest(6)
    base = np.full(50, 0.1)
    near = [_ints(base + 1e-5 * k) for k in range(3)]  # within 1/10 of the median pairwise distance
    flipped = _ints(-4 * base)
    agg = _ints(base)
    scores = contribution_scores(rows + near + [flipped], agg, [1] * 10)
    assert max(scores[6:9]) * 3 <= max(scores[:6]) * 1.01  # one share split three ways
    assert scores[9] == 0


def test_boosting_earns_nothing_extra():
    rows = _honest(6)
    agg = _ints(np.full(50, 0.1))
    boosted = rows[0] * 20
    scores = contribution_scores(rows + [boosted], agg, [1] * 7)
    assert scores[6] * 10 <= min(scores[:6])  # p = 20: a twentieth


def test_rule_zero_stays_zero_and_permutation_follows():
    rows = _honest(7)
    agg = _ints(np.full(50, 0.1))
    rule = [1, 0, 1, 1, 0, 1, 1]
    scores = contribution_scores(rows, agg, rule)
    assert scores[1] == scores[4] == 0
    perm = [3, 0, 6, 2, 5, 1, 4]
    again = contribution_scores([rows[i] for i in perm], agg, [rule[i] for i in perm])
    assert again == [scores[i] for i in perm]


def test_multi_krum_no_longer_pays_identical_attackers_their_population_share():
    """The issue's observation: Multi-Krum keeps 4 identical ALIE updates and drops honest ones."""
    rng = np.random.default_rng(5)
    d, n, byz = 60, 20, 4
    mean, std = np.full(d, 0.05), np.full(d, 0.03)
    honest = [mean + rng.standard_normal(d) * std for _ in range(n - byz)]
    alie = np.mean(honest, axis=0) - 0.4 * np.std(honest, axis=0)
    blobs = [consensus.encode({"w": v.astype(np.float32)}) for v in honest + [alie] * byz]
    peers = [f"0x{i + 1:040x}" for i in range(n)]
    items = [CommittedUpdate(Commitment(p, hashlib.sha256(b).digest(), "", 10), b) for p, b in zip(peers, blobs)]
    genesis = consensus.encode({"w": np.zeros(d, dtype=np.float32)})
    out = compute_round_outcome(round=1, previous_model=genesis, updates=items, rule="multi_krum", rule_param=0,
                                f=byz, reward_pool=10**18)
    byz_peers = set(peers[n - byz:])
    assert all(out.scores[i] for i in range(n - byz, n))  # Multi-Krum still selects them ...
    paid_byz = sum(a for p, a in zip(out.peers, out.amounts) if p in byz_peers)
    assert paid_byz * n < byz * sum(out.amounts) / 2  # ... but they are paid well under half their population share
