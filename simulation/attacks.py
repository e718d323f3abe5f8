"""How a simulated Byzantine peer forges its update: `peer.byzantine.adversary`'s attacks at the simulator's
strengths."""

from __future__ import annotations

from collections.abc import Sequence

from peer.byzantine.adversary import Adversary, Strengths
from peer.byzantine.noisy import SHARED, evade_dedup
from peer.byzantine.optimised import Aggregator, rule_params
from peer.learning.tasks import StateDict

#: The simulator's attack strengths (documented in docs/robustness.md). Sign flip and scaling are amplified:
#: a plain −1× update from 20 % of peers only slows FedAvg down, the amplified ones are the classic breaking attacks.
STRENGTHS = Strengths(sign_flip_factor=4.0, scale_factor=20.0, gaussian_std=1.0, ipm_epsilon=0.1)

#: The shared vector of the attacks every colluding Byzantine peer answers identically within a round (the noisy
#: variants add each peer's own noise to it): computed once per round.
_cache: dict[str, object] = {}


def forge_update(
    attack: str,
    own: StateDict,
    honest: Sequence[StateDict],
    *,
    n: int,
    f: int,
    seed: int,
    rule: str = "fedavg",
    rule_f: int | None = None,
    aggregator: Aggregator | None = None,
) -> StateDict:
    """A Byzantine peer's float update for `attack` (`peer.byzantine.adversary.Attack.apply` at `STRENGTHS`), given its
    own honestly trained update and, for the omniscient attacks (ALIE, IPM and the optimised ones), the honest
    peers' updates of this round (a rushing member can unseal them before the commit deadline). `rule`/`rule_f` is
    the federation's rule and the f it runs with: `fang` picks its variant from it and `alie_opt`/`ipm_opt` line-search
    against it. Without enough honest updates to estimate from (2; IPM 1) the peer commits its own update.
    `attack` may carry parameters as a peer's `--attack` does (`"alie_noisy:noise_ratio=0.5"`); `<attack>_noisy`
    adds the peer's own noise (seeded by `seed`) to the shared vector (`peer.byzantine.noisy`). `aggregator`
    (benches only) replaces the rule `alie_opt`/`ipm_opt` search against, for a run aggregated by another
    definition of the rule: the attacker then targets the aggregation that actually runs."""
    if attack in ("label_flip", "none"):
        return dict(own)
    spec = Adversary.parse(attack)
    kind, base = spec.attack, spec.attack.base
    if kind.needs_other_updates and len(honest) < (1 if base.value == "ipm" else 2):
        return dict(own)
    params = {**STRENGTHS.params(kind), **rule_params(base.value, rule, f if rule_f is None else rule_f), **spec.params}
    if aggregator is not None and "aggregator" in params:
        params["aggregator"] = aggregator
    shared = base.value in SHARED
    if shared and _cache.get("honest") is honest and _cache.get("attack") == attack:
        forged = dict(_cache["update"])  # type: ignore[call-overload]
    else:
        forged = base.apply(own, honest=honest, n=n, f=f, seed=seed, **params)
        if shared:
            _cache.update(honest=honest, attack=attack, update=forged)
    if kind is not base:
        return evade_dedup(forged, honest, noise_ratio=float(params["noise_ratio"]), seed=seed)
    return forged
