"""The issue-13 fast paths give the same integers as the plain definitions (brute force in Python ints)."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from consensus.aggregators.fedavg import weighted_mean
from consensus.codec import Q_MAX
from consensus.intmath import exact_mean

int32s = st.integers(-Q_MAX, Q_MAX)


def _half_even(x: Fraction) -> int:
    return round(x)  # Fraction.__round__ rounds half to even


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(int32s, min_size=5, max_size=5), min_size=1, max_size=9), st.sampled_from([1, 2, 3]))
def test_exact_mean_matches_fractions_and_weighted_mean(values, workers):
    rows = [np.array(v, dtype=np.int32) for v in values]
    expect = [_half_even(Fraction(sum(int(r[k]) for r in rows), len(rows))) for k in range(5)]
    got = exact_mean(rows, workers)
    assert got.dtype == np.int32 and got.tolist() == expect
    assert got.tolist() == weighted_mean(rows, [1] * len(rows), workers).tolist()


def test_exact_mean_ties_and_chunks(monkeypatch):
    from consensus import intmath

    monkeypatch.setattr(intmath, "MEAN_COLUMNS", 3)
    rows = [np.array([1, 3, -1, -3, Q_MAX, -Q_MAX, 5], dtype=np.int32),
            np.array([0, 0, 0, 0, Q_MAX, -Q_MAX, 6], dtype=np.int32)]
    assert exact_mean(rows, 2).tolist() == [0, 2, 0, -2, Q_MAX, -Q_MAX, 6]
