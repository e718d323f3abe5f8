"""The round outcome is what peers vote and auditors verify: it must be order-free and strict about hashes."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

import consensus
from consensus.commitment import Commitment, CommittedUpdate
from consensus.round_outcome import RoundNotAggregatable, compute_round_outcome

SPEC = consensus.ModelSpec([("w", (8,))])
POOL = 10**18


def _update(values: np.ndarray) -> bytes:
    return consensus.encode({"w": values.astype(np.float32)})


def _committed(peer: str, blob: bytes | None, *, hash_of: bytes | None = None, samples: int = 10) -> CommittedUpdate:
    source = hash_of if hash_of is not None else blob
    return CommittedUpdate(Commitment(peer, hashlib.sha256(source or b"").digest(), "", samples), blob)


PEERS = [f"0x{i:040x}" for i in (0xA1, 0x0B, 0xC3, 0x04, 0xE5)]
GENESIS = consensus.encode({"w": np.zeros(8, dtype=np.float32)})


def _honest(seed: int) -> bytes:
    return _update(np.random.default_rng(seed).normal(0.0, 0.01, 8) + 0.1)


def _outcome(items, rule: str, *, f: int, round: int):
    return compute_round_outcome(round=round, previous_model=GENESIS, updates=items, rule=rule, rule_param=0, f=f,
                                 reward_pool=POOL)


def test_outcome_does_not_depend_on_arrival_order() -> None:
    items = [_committed(p, _honest(i)) for i, p in enumerate(PEERS)]
    a = _outcome(items, "multi_krum", f=1, round=1)
    b = _outcome(items[::-1], "multi_krum", f=1, round=1)
    assert a.digest == b.digest and a.new_model == b.new_model
    assert list(a.peers) == sorted(PEERS, key=lambda p: int(p, 16))
    assert sum(a.amounts) == POOL


def test_sign_flipped_peer_is_excluded_by_multi_krum_and_paid_nothing() -> None:
    attacker = PEERS[2]
    items = [_committed(p, _update(-50 * np.ones(8)) if p == attacker else _honest(i)) for i, p in enumerate(PEERS)]
    out = _outcome(items, "multi_krum", f=1, round=3)
    assert out.excluded == (attacker,)
    assert out.amounts[out.peers.index(attacker)] == 0
    assert out.reward_tree.amount_of(attacker) in (None, 0)


def test_blob_not_matching_its_committed_hash_is_excluded() -> None:
    liar = PEERS[0]
    items = [
        _committed(p, _honest(i), hash_of=b"something else" if p == liar else None) for i, p in enumerate(PEERS)
    ]
    out = _outcome(items, "trimmed_mean", f=1, round=1)
    assert liar in out.excluded
    assert out.valid[out.peers.index(liar)] is False


def test_missing_blobs_beyond_the_rule_s_tolerance_make_the_round_unaggregatable() -> None:
    items = [_committed(p, None, hash_of=b"x") for p in PEERS[:4]] + [_committed(PEERS[4], _honest(4))]
    with pytest.raises(RoundNotAggregatable):
        _outcome(items, "krum", f=1, round=1)


def test_duplicate_commitment_from_one_peer_is_refused() -> None:
    items = [_committed(PEERS[0], _honest(0)), _committed(PEERS[0], _honest(1))]
    with pytest.raises(ValueError):
        _outcome(items, "fedavg", f=0, round=1)


def test_default_multi_krum_m_counts_only_usable_updates() -> None:
    """Regression: one garbage blob among 6 peers with f=1 used to ask for m = 5 of only 5 usable updates."""
    peers = PEERS + ["0x" + "f" * 40]
    items = [_committed(p, b"garbage" if i == 0 else _honest(i)) for i, p in enumerate(peers)]
    out = _outcome(items, "multi_krum", f=1, round=1)
    assert peers[0] in out.excluded
