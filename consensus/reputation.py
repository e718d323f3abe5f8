"""The reputation rule `w ← w + α(outcome − w)`, exactly as the contract settles it (integer maths, floors).

Defined once here so that tests, the auditor and the simulator predict the very weights the contract stores;
the Solidity side (`ReputationMath`) is checked against this function by the contract tests.
"""
from __future__ import annotations

#: Voting weights are fixed point: WEIGHT_ONE = 1.0 (the contract's WEIGHT_ONE).
WEIGHT_ONE = 1_000_000

_WAD = 10**18
_BPS = 10_000


def _rpow(x: int, n: int, wad: int = _WAD) -> int:
    """x**n in `wad` fixed point, rounding down at every step as the contract's rpow does."""
    z = wad
    while n > 0:
        if n & 1:
            z = z * x // wad
        n >>= 1
        if n > 0:
            x = x * x // wad
    return z


def reputation_step(weight: int, alpha_bps: int, rewarded: bool, missed: int = 0) -> int:
    """One outcome for the member's vote round, then `missed` outcome-0 rounds.

    outcome 1: w + floor((ONE − w)·α)   (or w − floor((w − ONE)·α) above ONE)
    outcome 0: floor(w·(1 − α));   k missed rounds: floor(w · rpow(1 − α, k)) in 1e18 fixed point.
    """
    w = weight
    if rewarded:
        w = w + (WEIGHT_ONE - w) * alpha_bps // _BPS if w <= WEIGHT_ONE else w - (w - WEIGHT_ONE) * alpha_bps // _BPS
    else:
        w = w * (_BPS - alpha_bps) // _BPS
    if missed and w:
        w = w * _rpow((_BPS - alpha_bps) * 10**14, missed) // _WAD
    return w
