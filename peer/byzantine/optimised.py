"""The literature's strongest update attacks, on flat float64 vectors (wired into `adversary.Attack`).

All take `reference`: the updates the attacker knows. Omniscient (the strongest form, what the simulator
uses): the honest updates of the round — a Byzantine *member* can unseal every other member's blob before
the commit deadline. Non-omniscient: the Byzantine peers' own honestly trained updates (the papers'
"partial knowledge"/"AGR-agnostic" setting). Every Byzantine peer sends the returned vector.

- `min_max`, `min_sum` (Shejwalkar & Houmansadr, NDSS 2021, AGR-agnostic): mean − γ·p with p = std (default),
  unit mean or sign of the mean, γ the largest (binary search, as in the authors' code) such that the
  malicious update's max (min-max) or summed (min-sum) squared distance to the reference updates stays
  within the largest pairwise distance (min-max) / the smallest summed distance of a reference update
  (min-sum).
- `fang` (Fang, Cao, Jia, Gong, USENIX Security 2020, full knowledge): against Krum-based rules the
  "attack on Krum" (mean − λ·sign(mean), λ halved from the paper's upper bound until Krum picks it);
  against the other rules the "attack on trimmed mean" (per coordinate, values beyond the honest extreme
  in the direction opposite to the mean's sign, uniform in [w, b·w] or [w/b, w], b = 2).
- `alie_opt`, `ipm_opt` (ByzFL's `Optimal_ALittleIsEnough` / `Optimal_InnerProductManipulation`): mean + τ·std
  (ddof 1) and −τ·mean, τ chosen by ByzFL's expansion/contraction line search (20 evaluations, start 0,
  step 10, ratio 0.8) maximising ‖aggregate(reference + f copies) − mean(reference)‖ under the federation's
  actual rule (`rule_aggregator`; ByzFL's default is the mean behind static clipping).
- `mimic` (Karimireddy, He, Jaggi, ICLR 2022): copy the reference update with the largest projection on the
  top principal direction of the centred reference updates (the paper's heuristic; ByzFL's `Mimic` copies
  a fixed index).
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

Aggregator = Callable[[Sequence[np.ndarray]], np.ndarray]
OPTIMISED = ("min_max", "min_sum", "fang", "alie_opt", "ipm_opt", "mimic")
KRUM_BASED = ("krum", "multi_krum", "bulyan")


def flatten(update: Mapping[str, torch.Tensor]) -> np.ndarray:
    return np.concatenate([update[k].detach().to(torch.float64).reshape(-1).numpy() for k in update])


def unflatten(vec: np.ndarray, like: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    out, pos = {}, 0
    for k, v in like.items():
        out[k] = torch.from_numpy(np.ascontiguousarray(vec[pos:pos + v.numel()])).to(torch.float32).reshape(v.shape)
        pos += v.numel()
    return out


def mean_aggregator(vectors: Sequence[np.ndarray]) -> np.ndarray:
    return np.mean(np.stack(vectors), axis=0)


def rule_aggregator(rule: str, f: int, scale_bits: int = 20) -> Aggregator:
    """The federation's exact rule as a float function (quantised to the canonical grid, as peers send)."""
    from consensus.aggregators import RuleInput
    from consensus.aggregators.compose import run_composed
    from consensus.errors import AggregationError
    from consensus.feasibility import split_rule

    pre, base = split_rule(rule)
    scale = float(1 << scale_bits)

    def run(vectors: Sequence[np.ndarray]) -> np.ndarray:
        rows = [np.clip(np.rint(v * scale), -(2**31 - 1), 2**31 - 1).astype(np.int32) for v in vectors]
        inp = RuleInput(rows, [1] * len(rows), f, 1)
        try:
            values = run_composed(pre, base, inp, {}).values
            return values.astype(np.float64) / scale
        except AggregationError:
            return mean_aggregator(vectors)

    return run


def _deviation(ref: np.ndarray, kind: str) -> np.ndarray:
    mu = ref.mean(0)
    if kind == "std":
        return ref.std(0, ddof=1) if len(ref) > 1 else np.abs(mu)
    if kind == "sign":
        return np.sign(mu)
    if kind == "unit_vec":
        return mu / max(np.linalg.norm(mu), 1e-30)
    raise ValueError(f"deviation must be std, sign or unit_vec, got {kind!r}")


def _sq_dists(ref: np.ndarray) -> np.ndarray:
    g = ref @ ref.T
    d = np.diag(g)
    return np.maximum(d[:, None] + d[None, :] - 2 * g, 0.0)


def _largest_gamma(ok: Callable[[float], bool], gamma: float = 10.0, tol: float = 1e-5) -> float:
    """The authors' search: step halves each time, move up on success and down on failure."""
    succ, step = 0.0, gamma
    while abs(succ - gamma) > tol:
        if ok(gamma):
            succ = gamma
            gamma += step / 2
        else:
            gamma -= step / 2
        step /= 2
    return succ


def min_max(reference: Sequence[np.ndarray], *, deviation: str = "std") -> np.ndarray:
    ref = np.stack(reference)
    mu, dev = ref.mean(0), _deviation(ref, deviation)
    bound = _sq_dists(ref).max()
    gamma = _largest_gamma(lambda g: float((((ref - (mu - g * dev)) ** 2).sum(1)).max()) <= bound)
    return mu - gamma * dev


def min_sum(reference: Sequence[np.ndarray], *, deviation: str = "std") -> np.ndarray:
    ref = np.stack(reference)
    mu, dev = ref.mean(0), _deviation(ref, deviation)
    bound = _sq_dists(ref).sum(1).min()
    gamma = _largest_gamma(lambda g: float((((ref - (mu - g * dev)) ** 2).sum(1)).sum()) <= bound)
    return mu - gamma * dev


def _krum_picks_byzantine(ref: np.ndarray, w: np.ndarray, f: int) -> bool:
    allv = np.vstack([ref, np.repeat(w[None, :], f, axis=0)])
    n = len(allv)
    k = max(1, n - f - 2)
    dist = _sq_dists(allv)
    scores = [np.sort(np.delete(dist[i], i))[:k].sum() for i in range(n)]
    return int(np.argmin(scores)) >= len(ref)


def fang(reference: Sequence[np.ndarray], *, f: int, rule: str = "trimmed_mean", seed: int = 0,
         b: float = 2.0) -> np.ndarray:
    ref = np.stack(reference)
    mu = ref.mean(0)
    s = np.sign(mu)
    if rule.split("+")[-1] in KRUM_BASED and f > 0:
        n, d = len(ref) + f, ref.shape[1]
        dist = _sq_dists(ref)
        k = max(1, n - 2 * f - 1)
        near = min(np.sort(np.delete(dist[i], i))[:max(1, n - f - 2)].sum() for i in range(len(ref)))
        lam = np.sqrt(near) / (k * np.sqrt(d)) + np.linalg.norm(ref, axis=1).max() / np.sqrt(d)
        floor = lam * 1e-5
        while lam > floor and not _krum_picks_byzantine(ref, mu - lam * s, f):
            lam /= 2
        return mu - lam * s
    rng = np.random.default_rng(seed & 0x7FFF_FFFF)
    wmax, wmin = ref.max(0), ref.min(0)
    u = rng.uniform(0.0, 1.0, size=mu.shape)
    # honest mean going up (s > 0): go below the smallest value; going down: above the largest
    low_side = np.where(wmin > 0, wmin / b + u * (wmin - wmin / b), wmin * b + u * (wmin - wmin * b))
    high_side = np.where(wmax > 0, wmax + u * (wmax * b - wmax), wmax + u * (wmax / b - wmax))
    return np.where(s > 0, low_side, high_side)


def _line_search(evaluate: Callable[[float], float], evals: int = 20, start: float = 0.0, delta: float = 10.0,
                 ratio: float = 0.8) -> float:
    """ByzFL's expansion then contraction search for the attack factor maximising `evaluate`."""
    best_x, best_y = start, evaluate(start)
    remaining = evals - 1
    while remaining > 0:  # expansion: double the step while it helps
        x = best_x + delta
        y = evaluate(x)
        remaining -= 1
        if y > best_y:
            best_x, best_y = x, y
            delta *= 2
        else:
            delta *= ratio
            break
    while remaining > 0:  # contraction
        x = best_x + delta
        y = evaluate(x)
        remaining -= 1
        if y > best_y:
            best_x, best_y = x, y
        delta *= ratio
    return best_x


def _optimised(reference: Sequence[np.ndarray], craft: Callable[[float], np.ndarray], f: int,
               aggregator: Aggregator | None, evals: int) -> np.ndarray:
    agg = aggregator or mean_aggregator
    mu = np.stack(reference).mean(0)

    def distance(tau: float) -> float:
        w = craft(tau)
        return float(np.linalg.norm(agg([*reference, *([w] * max(f, 1))]) - mu))

    return craft(_line_search(distance, evals))


def alie_opt(reference: Sequence[np.ndarray], *, f: int, aggregator: Aggregator | None = None,
             evals: int = 20) -> np.ndarray:
    ref = np.stack(reference)
    mu, sd = ref.mean(0), ref.std(0, ddof=1)
    return _optimised(reference, lambda tau: mu + tau * sd, f, aggregator, evals)


def ipm_opt(reference: Sequence[np.ndarray], *, f: int, aggregator: Aggregator | None = None,
            evals: int = 20) -> np.ndarray:
    mu = np.stack(reference).mean(0)
    return _optimised(reference, lambda tau: -tau * mu, f, aggregator, evals)


def mimic(reference: Sequence[np.ndarray]) -> np.ndarray:
    ref = np.stack(reference)
    centred = ref - ref.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    proj = np.abs(centred @ vt[0])
    return ref[int(np.argmax(proj))].copy()


def rule_params(attack: str, rule: str, f: int, scale_bits: int = 20) -> dict:
    """What an optimised attack needs to know of the federation's rule: `fang` picks its variant from the rule's
    name, `alie_opt`/`ipm_opt` line-search against the rule itself (the strongest, omniscient setting). One place, so
    real peers and the simulator attack the same way."""
    if attack not in OPTIMISED:
        return {}
    params: dict = {"rule": rule}
    if attack in ("alie_opt", "ipm_opt"):
        params["aggregator"] = rule_aggregator(rule, f, scale_bits)
    return params


def apply(name: str, target: Mapping[str, torch.Tensor], params: Mapping) -> dict[str, torch.Tensor]:
    """`Attack.apply` for the attacks above: `honest` (or the attacker's own update alone), `f`, `rule`,
    `aggregator` (default: the mean), `seed`, `deviation`, `evals`."""
    honest = list(params.get("honest") or ()) or [target]
    reference = [flatten(u) for u in honest]
    f = int(params.get("f") or 1)
    if name in ("min_max", "min_sum") and len(reference) < 2:
        reference.append(np.zeros_like(reference[0]))
    if name == "min_max":
        vec = min_max(reference, deviation=str(params.get("deviation", "std")))
    elif name == "min_sum":
        vec = min_sum(reference, deviation=str(params.get("deviation", "std")))
    elif name == "fang":
        vec = fang(reference, f=f, rule=str(params.get("rule", "trimmed_mean")), seed=int(params.get("seed", 0)))
    elif name == "alie_opt":
        vec = alie_opt(reference, f=f, aggregator=params.get("aggregator"), evals=int(params.get("evals", 20)))
    elif name == "ipm_opt":
        vec = ipm_opt(reference, f=f, aggregator=params.get("aggregator"), evals=int(params.get("evals", 20)))
    elif name == "mimic":
        vec = mimic(reference)
    else:
        raise ValueError(f"not an optimised attack: {name!r}")
    return unflatten(vec, target)
