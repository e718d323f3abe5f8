"""How a simulated Byzantine peer forges its update: `peer.byzantine.adversary`'s attacks at the simulator's
strengths."""

from __future__ import annotations

from collections.abc import Sequence

from peer.byzantine.adversary import Attack, Strengths
from peer.byzantine.optimised import rule_params
from peer.learning.tasks import StateDict

#: The simulator's attack strengths (documented in docs/robustness.md). Sign flip and scaling are amplified:
#: a plain −1× update from 20 % of peers only slows FedAvg down, the amplified ones are the classic breaking attacks.
STRENGTHS = Strengths(sign_flip_factor=4.0, scale_factor=20.0, gaussian_std=1.0, ipm_epsilon=0.1)

#: Attacks every colluding Byzantine peer answers identically within a round: computed once per round.
_SHARED = ("alie", "ipm", "min_max", "min_sum", "alie_opt", "ipm_opt", "mimic")
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
) -> StateDict:
    """A Byzantine peer's float update for `attack` (`peer.byzantine.adversary.Attack.apply` at `STRENGTHS`), given its
    own honestly trained update and, for the omniscient attacks (ALIE, IPM and the optimised ones), the honest
    peers' updates of this round (a rushing member can unseal them before the commit deadline). `rule`/`rule_f` is
    the federation's rule and the f it runs with: `fang` picks its variant from it and `alie_opt`/`ipm_opt` line-search
    against it. Without enough honest updates to estimate from (2; IPM 1) the peer commits its own update."""
    if attack in ("label_flip", "none"):
        return dict(own)
    kind = Attack(attack)
    if kind.needs_other_updates and len(honest) < (1 if kind is Attack.IPM else 2):
        return dict(own)
    params = dict(STRENGTHS.params(kind))
    params.update(rule_params(attack, rule, f if rule_f is None else rule_f))
    if attack in _SHARED and _cache.get("honest") is honest and _cache.get("attack") == attack:
        return dict(_cache["update"])  # type: ignore[call-overload]
    forged = kind.apply(own, honest=honest, n=n, f=f, seed=seed, **params)
    if attack in _SHARED:
        _cache.update(honest=honest, attack=attack, update=forged)
    return forged
