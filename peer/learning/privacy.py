"""Differential privacy of a peer's local training: configuration, accounting, on-chain encoding.

Mechanism (record-level DP-SGD, Abadi et al. 2016, "Deep Learning with Differential Privacy"):
every local step draws a Poisson sample of the peer's records (rate q = batch_size / n), clips each record's
gradient to L2 norm `max_grad_norm`, sums, adds Gaussian noise N(0, (noise_multiplier · max_grad_norm)²) and
divides by the expected batch size. The guarantee protects each *record* of the institution's data
(a patient, a transaction) against everyone who sees the peer's updates — other peers, auditors, the chain.

Why record-level rather than client-level (DP-FedAvg, McMahan et al. 2018): in this system every member is known
and accountable on chain, so hiding *participation* is moot; what the institution must protect is its records.

Accounting: opacus' `RDPAccountant` (Mironov 2017; subsampled Gaussian, Mironov, Talwar & Zhang 2019).
The history `(noise_multiplier, sample_rate, steps)` is a plain tuple list so the node can persist it in its
state directory and report the *cumulative* ε over all rounds it has trained.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

#: (noise_multiplier, sample_rate, num_steps) — one entry per batch of identical steps (opacus' history format).
DPStep = tuple[float, float, int]

UINT64_MAX = 2**64 - 1


@dataclass(frozen=True)
class DPConfig:
    """DP-SGD parameters. `delta` is the δ ε is reported at (keep it below 1/number of records)."""

    noise_multiplier: float = 1.0
    max_grad_norm: float = 1.0
    delta: float = 1e-5

    def __post_init__(self) -> None:
        if not (self.noise_multiplier > 0 and math.isfinite(self.noise_multiplier)):
            raise ValueError("noise_multiplier must be a positive finite number")
        if not (self.max_grad_norm > 0 and math.isfinite(self.max_grad_norm)):
            raise ValueError("max_grad_norm must be a positive finite number")
        if not 0 < self.delta < 1:
            raise ValueError("delta must be in (0, 1)")


def merge_history(history: Iterable[DPStep]) -> list[DPStep]:
    """Collapse consecutive entries with the same (σ, q) — keeps persisted histories short."""
    merged: list[DPStep] = []
    for sigma, q, steps in history:
        if merged and merged[-1][0] == sigma and merged[-1][1] == q:
            merged[-1] = (sigma, q, merged[-1][2] + int(steps))
        else:
            merged.append((float(sigma), float(q), int(steps)))
    return merged


def epsilon_spent(history: Sequence[DPStep], delta: float) -> float:
    """ε at `delta` of the composition of every step in `history` (RDP accountant); 0.0 for no steps."""
    if not history:
        return 0.0
    from opacus.accountants import RDPAccountant

    accountant = RDPAccountant()
    accountant.history = [(float(s), float(q), int(n)) for s, q, n in merge_history(history)]
    return float(accountant.get_epsilon(delta=delta))


def privacy_to_chain(epsilon: float, delta: float) -> tuple[int, int]:
    """(epsilonE6, deltaE18) as the contract's `commit` takes them; no DP (ε = ∞) → (uint64 max, 0)."""
    if math.isinf(epsilon) or epsilon * 1e6 >= UINT64_MAX:
        return UINT64_MAX, 0
    if epsilon < 0 or not math.isfinite(epsilon):
        raise ValueError(f"invalid epsilon {epsilon}")
    return int(round(epsilon * 1e6)), min(int(round(delta * 1e18)), UINT64_MAX)


def privacy_from_chain(epsilon_e6: int, delta_e18: int) -> tuple[float, float]:
    """Inverse of `privacy_to_chain` (for reports)."""
    if epsilon_e6 == UINT64_MAX:
        return math.inf, 0.0
    return epsilon_e6 / 1e6, delta_e18 / 1e18
