"""ByzFL's float definitions of the rules we share with it, in float64 numpy, as the reference for
bench.robustness_byzfl.

Not ByzFL's code (ByzFL cannot be installed beside our torch): the same definitions, read from ByzFL's source
(LPD-EPFL/byzfl, byzfl/aggregators/aggregators.py and preaggregators.py), with ByzFL's defaults:

* TrMean(f): per coordinate, sort and average the middle n - 2f values.
* Median: np.median per coordinate (even n: the mean of the two middle values).
* MultiKrum(f): score_i = mean of the n-f-1 smallest squared distances to the others; average the n-f updates
  of smallest score (ours defaults to the paper's n-f-2 neighbours).
* CenteredClipping(m=None, L=1, tau=100.0): v = m (zero on the first call, then the previous call's output: the
  ByzFL object keeps it), L times v += mean_i clip_tau(x_i - v). Ours starts each round from the coordinate-wise
  median with an adaptive tau and L = 3 (a round is stateless for us).
* NNM(f): each update replaced by the mean of its n-f nearest (itself included).
* ARC(f): the int((2f/n)(n-f)) largest updates scaled to the norm of the next largest.
* Bucketing(s): random permutation, means of s consecutive updates, the leftover in a last bucket. ByzFL's
  default is s = 1 (a permutation only); we use s = 2, our bucket size, so that the rule is the same rule.
Compositions run the pre-aggregators in order, then the aggregator, every part with the same declared f.
"""
from __future__ import annotations

import numpy as np

CC_TAU = 100.0
CC_ITERATIONS = 1
BUCKET_SIZE = 2


def trimmed_mean(x: np.ndarray, f: int) -> np.ndarray:
    if f == 0:
        return x.mean(axis=0)
    return np.sort(x, axis=0)[f:-f].mean(axis=0)


def median(x: np.ndarray, f: int) -> np.ndarray:
    return np.median(x, axis=0)


def sq_distances(x: np.ndarray) -> np.ndarray:
    """Pairwise squared Euclidean distances (scipy's cdist squared, computed by differences for accuracy)."""
    return np.stack([((x - row) ** 2).sum(axis=1) for row in x])


def multi_krum(x: np.ndarray, f: int) -> np.ndarray:
    n = len(x)
    scores = np.sort(sq_distances(x), axis=1)[:, 1:n - f].mean(axis=1)
    chosen = np.argpartition(scores, n - f - 1)[:n - f]
    return x[chosen].mean(axis=0)


def nnm(x: np.ndarray, f: int) -> np.ndarray:
    k = len(x) - f
    nearest = np.argpartition(np.sqrt(sq_distances(x)), k - 1, axis=1)[:, :k]
    return x[nearest].mean(axis=1)


def arc(x: np.ndarray, f: int) -> np.ndarray:
    x = x.copy()
    n = len(x)
    norms = sorted((float(np.linalg.norm(v)), i) for i, v in enumerate(x))
    clipped = int((2 * f / n) * (n - f))
    threshold = norms[n - clipped - 1][0]
    for norm, i in norms[n - clipped:]:
        if norm > threshold:
            x[i] = x[i] * (threshold / norm)
    return x


def bucketing(x: np.ndarray, rng: np.random.Generator, s: int = BUCKET_SIZE) -> np.ndarray:
    x = x[rng.permutation(len(x))]
    full = len(x) // s
    out = x[:full * s].reshape(full, s, -1).mean(axis=1)
    if full * s != len(x):
        out = np.concatenate([out, x[full * s:].mean(axis=0, keepdims=True)])
    return out


class CenteredClipping:
    """ByzFL's CenteredClipping: stateful, it starts from its own previous output (zero at first)."""

    def __init__(self, tau: float = CC_TAU, iterations: int = CC_ITERATIONS) -> None:
        self.tau, self.iterations = tau, iterations
        self.m: np.ndarray | None = None

    def __call__(self, x: np.ndarray, f: int) -> np.ndarray:
        v = np.zeros_like(x[0]) if self.m is None else self.m
        for _ in range(self.iterations):
            diff = x - v
            norms = np.linalg.norm(diff, axis=1)
            factor = np.minimum(1.0, self.tau / np.where(norms > 0, norms, np.inf))
            v = v + (diff * factor[:, None]).mean(axis=0)
        self.m = v
        return v


BASES = {"trimmed_mean": trimmed_mean, "median": median, "multi_krum": multi_krum}
PRES = ("nnm", "arc", "bucketing")


class ByzflRule:
    """One federation's instance of a composed rule ("arc+nnm+trimmed_mean"): keeps CenteredClipping's state
    and the bucketing permutation stream across rounds, as one ByzFL RobustAggregator does."""

    def __init__(self, rule: str, seed: int) -> None:
        *self.pre, base = rule.split("+")
        unknown = [p for p in self.pre if p not in PRES]
        if unknown or (base not in BASES and base != "centered_clipping"):
            raise ValueError(f"no ByzFL definition for {rule!r}")
        self.base = CenteredClipping() if base == "centered_clipping" else BASES[base]
        self.rng = np.random.default_rng([seed, 15])

    def __call__(self, x: np.ndarray, f: int) -> np.ndarray:
        for name in self.pre:
            x = bucketing(x, self.rng) if name == "bucketing" else nnm(x, f) if name == "nnm" else arc(x, f)
        return self.base(x, f)
