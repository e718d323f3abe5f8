"""How a simulated Byzantine peer forges its update: `peer.byzantine.adversary`'s attacks at the simulator's
strengths."""

from __future__ import annotations

from collections.abc import Sequence

from peer.byzantine.adversary import Attack, Strengths
from peer.learning.tasks import StateDict

#: The simulator's attack strengths (documented in docs/robustness.md). Sign flip and scaling are amplified:
#: a plain −1× update from 20 % of peers only slows FedAvg down, the amplified ones are the classic breaking attacks.
STRENGTHS = Strengths(sign_flip_factor=4.0, scale_factor=20.0, gaussian_std=1.0, ipm_epsilon=0.1)


def forge_update(
    attack: str,
    own: StateDict,
    honest: Sequence[StateDict],
    *,
    n: int,
    f: int,
    seed: int,
) -> StateDict:
    """A Byzantine peer's float update for `attack` (`peer.byzantine.adversary.Attack.apply` at `STRENGTHS`), given its
    own honestly trained update and, for the omniscient attacks ALIE and IPM, the honest peers' updates of this
    round (a rushing member can unseal them before the commit deadline). Without enough honest updates to
    estimate from (ALIE needs 2, IPM 1) the peer commits its own update."""
    if attack in ("label_flip", "none"):
        return dict(own)
    kind = Attack(attack)
    if kind.needs_other_updates and len(honest) < (2 if kind is Attack.ALIE else 1):
        return dict(own)
    return kind.apply(own, honest=honest, n=n, f=f, seed=seed, **STRENGTHS.params(kind))
