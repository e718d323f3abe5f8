"""Bucketing (Karimireddy, He, Jaggi, "Byzantine-Robust Learning on Heterogeneous Datasets via Bucketing",
ICLR 2022), composable as "bucketing+<rule>".

Definition: the n updates are put in a pseudo-random order, cut into ceil(n/s) buckets of s consecutive
updates (s = `consensus.feasibility.BUCKET_SIZE` = 2; the last bucket holds the n mod s left over, as in
ByzFL), each bucket is replaced by the exact mean of its updates (rounded half to even), and the inner rule
runs on the bucket means with the same f (one Byzantine member spoils at most one bucket). Every member of a
bucket receives the inner rule's score of its bucket.

Determinism: the order is not a random draw but a function of the round's updates only. key =
sha256 of the sorted sha256 digests of the rows (the multiset of updates, whatever their input order); each
row is ranked by sha256(key || its digest), ties (identical rows) by canonical index. So every honest peer
computes the same buckets, and permuting the inputs permutes nothing but which identical row is where.
A member can still grind its own update to steer its rank; the bucket means it can reach are the ones the
paper's analysis already allows a Byzantine member per bucket.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from consensus.aggregators.base import RuleInput
from consensus.aggregators.fedavg import weighted_mean
from consensus.feasibility import BUCKET_SIZE, require_feasible


class BucketedInput(RuleInput):
    """The bucket means, and which rows of the previous input each one stands for (`groups`)."""

    groups: tuple[tuple[int, ...], ...]


def bucket_order(rows: Sequence[np.ndarray]) -> list[int]:
    digests = [hashlib.sha256(np.ascontiguousarray(r, dtype="<i4").tobytes()).digest() for r in rows]
    key = hashlib.sha256(b"fedledger/bucketing/v1" + b"".join(sorted(digests))).digest()
    return sorted(range(len(rows)), key=lambda i: (hashlib.sha256(key + digests[i]).digest(), i))


def bucketing(inp: RuleInput) -> RuleInput:
    require_feasible("bucketing", inp.n, inp.f)
    order = bucket_order(inp.rows)
    groups = tuple(tuple(sorted(order[s:s + BUCKET_SIZE])) for s in range(0, inp.n, BUCKET_SIZE))
    means = [weighted_mean([inp.rows[i] for i in g], [1] * len(g), inp.workers) for g in groups]
    out = BucketedInput(means, [sum(inp.weights[i] for i in g) for g in groups], inp.f, inp.workers, mixed=inp.mixed)
    object.__setattr__(out, "groups", groups)
    return out
