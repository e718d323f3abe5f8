"""How a simulated Byzantine peer forges its update: `peer.adversary`'s attacks at the simulator's strengths."""
from __future__ import annotations

from typing import Sequence

from peer import adversary
from peer.tasks import StateDict
from simulation.config import SimError

#: Attack strengths (documented in docs/robustness.md). Sign flip and scaling are amplified: a plain
#: −1× update from 20 % of peers only slows FedAvg down, the amplified ones are the classic breaking attacks.
SIGN_FLIP_FACTOR = 4.0
SCALE_FACTOR = 20.0
GAUSSIAN_STD = 1.0
IPM_EPSILON = 0.1


def forge_update(
    attack: str,
    own: StateDict,
    honest: Sequence[StateDict],
    *,
    n: int,
    f: int,
    seed: int,
) -> StateDict:
    """A Byzantine peer's float update for `attack` (via `peer.adversary`), given its own honestly trained
    update and, for the omniscient attacks ALIE and IPM, the honest peers' updates of this round (a rushing
    member can unseal them before the commit deadline).

    Strengths are module constants, documented in docs/robustness.md.
    """
    if attack in ("label_flip", "none"):
        return dict(own)
    if attack == "sign_flip":
        return adversary.sign_flip(own, factor=SIGN_FLIP_FACTOR)
    if attack == "scaled":
        return adversary.scaled(own, factor=SCALE_FACTOR)
    if attack == "gaussian":
        return adversary.gaussian(own, std=GAUSSIAN_STD, seed=seed)
    if attack == "alie":
        if len(honest) < 2:
            return dict(own)
        return adversary.alie(honest, n=n, f=f)
    if attack == "ipm":
        return adversary.ipm(honest, epsilon=IPM_EPSILON) if honest else dict(own)
    raise SimError(f"unknown attack {attack!r}")
