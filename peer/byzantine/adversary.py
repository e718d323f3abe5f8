"""Byzantine behaviours for experiments (opt-in only; an honest peer never constructs an `Adversary`).

Three kinds of misbehaviour:

- **update** poisoning — pure functions on an update (dict name → tensor), the `w_local − M(r−1)` a peer
  commits: `sign_flip`, `gaussian`, `scaled`, `alie`, `ipm`, and the optimised attacks of
  `peer.byzantine.optimised`: `min_max`, `min_sum`, `fang`, `alie_opt`, `ipm_opt`, `mimic`; and the
  dedup-evading `<attack>_noisy` of the shared ones (`peer.byzantine.noisy`: each member adds its own noise);
- **data** poisoning — the peer trains honestly on corrupted data: `label_flip`;
- **protocol** misbehaviour, carried out by the round loop from the flags of :class:`Adversary`:
  `equivocate` (gossip one blob, commit another), `wrong_vote` (vote a digest that is not the honest one),
  `silent` (never commit nor vote), `garbage` (commit/gossip bytes that are not a canonical update).

ALIE and IPM are computed from other peers' updates. In this decentralized system a Byzantine *member* can
unseal every other member's blob (it is a recipient), so a rushing attacker that waits for honest peers'
gossip before the commit deadline knows their updates of the current round; otherwise it can use the previous
round's, or estimate mean/std from several updates it trains itself on disjoint folds of its own data.
The functions take either the list of updates (`honest`) or a known `(mean, std)` estimate.
"""
from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum

import torch

from peer.byzantine import noisy, optimised
from peer.byzantine.params import check_params, parse_number
from peer.learning.tasks import TaskData

Update = Mapping[str, torch.Tensor]


def _seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed) & 0x7FFF_FFFF_FFFF_FFFF)


def _like(update: Update, fn: Callable[[str, torch.Tensor], torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: fn(k, v.to(torch.float32)).to(torch.float32).contiguous() for k, v in update.items()}


# --- strengths --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Strengths:
    """How hard each update attack pushes; one attack implementation, configured per caller.

    The defaults are the attacks' textbook forms (−1× sign flip, 10× boosting, N(0, 1) noise, IPM ε = 0.1),
    which a peer started with `--attack NAME` uses; `--attack NAME:key=value` overrides one. The simulator
    configures its own (`simulation.attacks.STRENGTHS`, documented in docs/robustness.md).
    """

    sign_flip_factor: float = 1.0
    scale_factor: float = 10.0
    gaussian_std: float = 1.0
    ipm_epsilon: float = 0.1
    noise_ratio: float = noisy.NOISE_RATIO

    def params(self, attack: "Attack") -> dict[str, float]:
        """The keyword parameters of `attack` these strengths set (none for attacks without a strength)."""
        own = {"noise_ratio": self.noise_ratio} if attack is not attack.base else {}
        return own | {Attack.SIGN_FLIP: {"factor": self.sign_flip_factor}, Attack.SCALED: {"factor": self.scale_factor},
                      Attack.GAUSSIAN: {"std": self.gaussian_std},
                      Attack.IPM: {"epsilon": self.ipm_epsilon}}.get(attack.base, {})

    def spec(self, name: str) -> str:
        """`name` as an `Adversary.parse` spec carrying these strengths (`"scaled"` → `"scaled:factor=20"`)."""
        if ":" in name or name not in ATTACK_NAMES:
            return name
        params = self.params(Attack(name))
        return f"{name}:" + ",".join(f"{k}={v:g}" for k, v in params.items()) if params else name


DEFAULT_STRENGTHS = Strengths()


# --- update poisoning -------------------------------------------------------------------------------------


def sign_flip(update: Update, *, factor: float = DEFAULT_STRENGTHS.sign_flip_factor) -> dict[str, torch.Tensor]:
    """−factor · update (reverse gradient ascent direction)."""
    return _like(update, lambda _, v: -float(factor) * v)


def gaussian(update: Update, *, std: float = DEFAULT_STRENGTHS.gaussian_std, seed: int = 0) -> dict[str, torch.Tensor]:
    """Replace the update by pure noise N(0, std²) of the same shapes (the "Gaussian attack")."""
    gen = _seeded(seed)
    return {k: torch.normal(0.0, float(std), size=tuple(v.shape), generator=gen) for k, v in update.items()}


def scaled(update: Update, *, factor: float = DEFAULT_STRENGTHS.scale_factor) -> dict[str, torch.Tensor]:
    """factor · update (boosting / model replacement, Bagdasaryan et al. 2020)."""
    return _like(update, lambda _, v: float(factor) * v)


def mean_std(updates: Sequence[Update]) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Coordinate-wise mean and (population) standard deviation of updates with identical names/shapes."""
    if not updates:
        raise ValueError("need at least one update")
    names = list(updates[0])
    stacked = {k: torch.stack([u[k].to(torch.float64) for u in updates]) for k in names}
    return (
        {k: s.mean(0).to(torch.float32) for k, s in stacked.items()},
        {k: s.std(0, unbiased=False).to(torch.float32) for k, s in stacked.items()},
    )


def alie_z(n: int, f: int) -> float:
    """z_max of "A Little Is Enough" (Baruch, Baruch & Goldberg, NeurIPS 2019):
    s = ⌊n/2 + 1⌋ − f peers must be "behind" the attack; z = Φ⁻¹((n − s) / n)."""
    if not 0 <= f < n:
        raise ValueError(f"need 0 <= f < n, got n={n} f={f}")
    s = n // 2 + 1 - f
    p = (n - s) / n
    if p <= 0:
        return 0.0
    return statistics.NormalDist().inv_cdf(min(p, 1 - 1e-12))


def alie(
    honest: Sequence[Update] = (),
    *,
    estimate: tuple[Update, Update] | None = None,
    n: int | None = None,
    f: int | None = None,
    z: float | None = None,
) -> dict[str, torch.Tensor]:
    """mean − z · std, coordinate-wise: small enough to pass robust rules, consistently biased.

    `z` defaults to `alie_z(n, f)` (n = all peers, f = Byzantine peers); if neither is given, z = 1.
    Statistics come from `estimate = (mean, std)` or from the `honest` updates (at least 2).
    """
    if estimate is not None:
        mean, std = estimate
    else:
        if len(honest) < 2:
            raise ValueError("ALIE needs >= 2 honest updates (or an estimate=(mean, std)) to estimate the spread")
        mean, std = mean_std(honest)
    if z is None:
        z = alie_z(n, f) if n is not None and f is not None else 1.0
    return {k: (mean[k].to(torch.float32) - float(z) * std[k].to(torch.float32)).contiguous() for k in mean}


def ipm(
    honest: Sequence[Update] = (), *, estimate: Update | None = None,
    epsilon: float = DEFAULT_STRENGTHS.ipm_epsilon,
) -> dict[str, torch.Tensor]:
    """Inner-product manipulation (Xie, Koyejo & Gupta, UAI 2019 "Fall of Empires"): −ε · mean(honest).

    Small ε keeps the update close to honest ones while making the aggregate's inner product with the true
    gradient negative when enough attackers collude. `estimate` = a known mean (one update suffices).
    """
    mean = estimate if estimate is not None else mean_std(honest)[0]
    return _like(mean, lambda _, v: -float(epsilon) * v)


# --- data poisoning ---------------------------------------------------------------------------------------


def label_flip(data: TaskData, num_classes: int) -> TaskData:
    """y → num_classes − 1 − y (Tolpegin et al. 2020); features unchanged."""
    if num_classes < 2:
        raise ValueError("label flipping needs >= 2 classes")
    return TaskData(data.x, (num_classes - 1 - data.y).to(torch.int64))


# --- protocol misbehaviour helpers ------------------------------------------------------------------------


def _stream(seed: int, label: bytes, size: int) -> bytes:
    out, counter = bytearray(), 0
    while len(out) < size:
        out += hashlib.sha256(label + seed.to_bytes(16, "big", signed=True) + counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:size])


def garbage_blob(size: int = 4096, *, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes: neither a canonical update nor a sealed blob."""
    return _stream(seed, b"fedledger/adversary/garbage", size)


def wrong_digest(honest_digest: bytes, *, seed: int = 0) -> bytes:
    """A 32-byte vote digest guaranteed to differ from the honest one."""
    candidate = _stream(seed, b"fedledger/adversary/vote" + bytes(honest_digest), 32)
    return candidate if candidate != honest_digest else bytes(b ^ 0xFF for b in candidate)


def equivocation_update(update: Update, *, seed: int = 0, std: float = 1e-2) -> dict[str, torch.Tensor]:
    """A second, plausible update (honest + small noise) for the other side of an equivocation."""
    gen = _seeded(seed)
    return _like(update, lambda _, v: v + torch.normal(0.0, float(std), size=tuple(v.shape), generator=gen))


# --- registry ---------------------------------------------------------------------------------------------


class AttackKind(str, Enum):
    UPDATE = "update"
    DATA = "data"
    PROTOCOL = "protocol"


class Attack(str, Enum):
    """Every supported Byzantine behaviour, by its CLI name."""

    SIGN_FLIP = "sign_flip"
    GAUSSIAN = "gaussian"
    SCALED = "scaled"
    LABEL_FLIP = "label_flip"
    ALIE = "alie"
    IPM = "ipm"
    EQUIVOCATE = "equivocate"
    WRONG_VOTE = "wrong_vote"
    SILENT = "silent"
    GARBAGE = "garbage"
    MIN_MAX = "min_max"
    MIN_SUM = "min_sum"
    FANG = "fang"
    ALIE_OPT = "alie_opt"
    IPM_OPT = "ipm_opt"
    MIMIC = "mimic"
    ALIE_NOISY = "alie_noisy"
    IPM_NOISY = "ipm_noisy"
    MIN_MAX_NOISY = "min_max_noisy"
    MIN_SUM_NOISY = "min_sum_noisy"
    ALIE_OPT_NOISY = "alie_opt_noisy"
    IPM_OPT_NOISY = "ipm_opt_noisy"
    MIMIC_NOISY = "mimic_noisy"

    @property
    def base(self) -> "Attack":
        """The attack a `<attack>_noisy` variant adds noise to; itself for every other attack."""
        return Attack(noisy.base_name(self.value))

    @property
    def kind(self) -> AttackKind:
        if self is Attack.LABEL_FLIP:
            return AttackKind.DATA
        if self in (Attack.EQUIVOCATE, Attack.WRONG_VOTE, Attack.SILENT, Attack.GARBAGE):
            return AttackKind.PROTOCOL
        return AttackKind.UPDATE

    @property
    def needs_other_updates(self) -> bool:
        """ALIE, IPM, the optimised attacks and their noisy variants need other peers' updates (or an estimate)."""
        return self.base in (Attack.ALIE, Attack.IPM) or self.base.value in optimised.OPTIMISED

    def apply(self, target, **params):
        """Apply an update attack to an update, or a data attack to TaskData (`num_classes=` required).

        Update attacks take their keyword parameters (`factor`, `std`, `seed`, `honest`, `estimate`, `n`, `f`,
        `z`, `epsilon`); ALIE/IPM ignore `target` except as fallback for IPM's mean when no `honest` is given.
        Missing strengths come from `DEFAULT_STRENGTHS`.
        Protocol behaviours are not functions of an update: they return `target` unchanged (see Adversary).
        """
        params = {**DEFAULT_STRENGTHS.params(self), **params}
        if self is not self.base:  # `<attack>_noisy`: the shared vector plus this member's own noise
            forged = self.base.apply(target, **params)
            return noisy.evade_dedup(forged, params.get("honest") or [target], noise_ratio=params["noise_ratio"],
                                     seed=int(params.get("seed", 0)))
        if self.value in optimised.OPTIMISED:
            return optimised.apply(self.value, target, params)
        if self is Attack.SIGN_FLIP:
            return sign_flip(target, factor=params["factor"])
        if self is Attack.GAUSSIAN:
            return gaussian(target, std=params["std"], seed=int(params.get("seed", 0)))
        if self is Attack.SCALED:
            return scaled(target, factor=params["factor"])
        if self is Attack.ALIE:
            n, f = params.get("n"), params.get("f")
            return alie(params.get("honest", ()), estimate=params.get("estimate"), n=None if n is None else int(n),
                        f=None if f is None else int(f), z=params.get("z"))
        if self is Attack.IPM:
            honest = params.get("honest") or ()
            estimate = params.get("estimate")
            if not honest and estimate is None:
                estimate = target
            return ipm(honest, estimate=estimate, epsilon=params["epsilon"])
        if self is Attack.LABEL_FLIP:
            if "num_classes" not in params:
                raise ValueError("label_flip needs num_classes=")
            return label_flip(target, int(params["num_classes"]))
        return target


ATTACK_NAMES: tuple[str, ...] = tuple(a.value for a in Attack)


@dataclass(frozen=True)
class Adversary:
    """A peer's configured misbehaviour, as the round loop consults it.

    `Adversary.parse("alie:z=1.5")`, `Adversary.parse("scaled:factor=20")`, `Adversary.parse("silent")`.
    Randomness is deterministic in (`seed`, round). Explicit `params` override the `strengths`.
    """

    attack: Attack
    params: Mapping[str, float | int] = field(default_factory=dict)
    seed: int = 0
    strengths: Strengths = DEFAULT_STRENGTHS

    @classmethod
    def parse(cls, text: str, *, seed: int = 0) -> "Adversary":
        name, _, rest = text.partition(":")
        try:
            attack = Attack(name.strip())
        except ValueError:
            raise ValueError(f"unknown attack {name!r}; choose from {' '.join(ATTACK_NAMES)}") from None
        params: dict[str, float | int] = {}
        for item in filter(None, (p.strip() for p in rest.split(","))):
            key, eq, value = item.partition("=")
            if not eq:
                raise ValueError(f"attack parameter {item!r} is not key=value")
            try:
                params[key.strip()] = parse_number(value.strip())
            except ValueError:
                raise ValueError(f"attack parameter {key!r} must be a number, got {value!r}") from None
        check_params(attack.value, params)
        return cls(attack, params, seed)

    def _round_seed(self, round: int) -> int:
        return self.seed * 1_000_003 + round

    # flags the round loop branches on
    @property
    def poisons_data(self) -> bool:
        return self.attack.kind is AttackKind.DATA

    @property
    def poisons_update(self) -> bool:
        return self.attack.kind is AttackKind.UPDATE

    @property
    def equivocates(self) -> bool:
        return self.attack is Attack.EQUIVOCATE

    @property
    def votes_wrong(self) -> bool:
        return self.attack is Attack.WRONG_VOTE

    @property
    def silent(self) -> bool:
        return self.attack is Attack.SILENT

    @property
    def sends_garbage(self) -> bool:
        return self.attack is Attack.GARBAGE

    def poison_data(self, data: TaskData, num_classes: int) -> TaskData:
        return self.attack.apply(data, num_classes=num_classes) if self.poisons_data else data

    def poison_update(
        self,
        update: Update,
        *,
        round: int = 0,
        honest: Sequence[Update] = (),
        n: int | None = None,
        f: int | None = None, rule: str | None = None, scale_bits: int = 20,
    ) -> dict[str, torch.Tensor]:
        """The update to commit instead of `update` (unchanged unless this is an update attack). For ALIE, `honest`
        holds the other updates the attacker knows (its own is added); the optimised attacks tune against `rule`."""
        if not self.poisons_update:
            return dict(update)
        base = self.attack.base.value
        tuned = optimised.rule_params(base, rule, 0 if f is None else f, scale_bits) if rule else {}
        params: dict = {"seed": self._round_seed(round), **self.strengths.params(self.attack), **tuned, **self.params}
        if self.attack.base is Attack.ALIE:
            params.setdefault("n", n)
        if self.attack.needs_other_updates:
            params.setdefault("f", f)
            params["honest"] = [update, *honest]
        return self.attack.apply(update, **params)

    def equivocation_update(self, update: Update, *, round: int = 0) -> dict[str, torch.Tensor]:
        return equivocation_update(update, seed=self._round_seed(round), std=float(self.params.get("std", 1e-2)))

    def garbage_blob(self, *, round: int = 0) -> bytes:
        return garbage_blob(int(self.params.get("size", 4096)), seed=self._round_seed(round))

    def vote_digest(self, honest_digest: bytes, *, round: int = 0) -> bytes:
        return wrong_digest(honest_digest, seed=self._round_seed(round)) if self.votes_wrong else honest_digest


__all__ = [
    "ATTACK_NAMES", "DEFAULT_STRENGTHS", "Adversary", "Attack", "AttackKind", "Strengths", "alie", "alie_z",
    "equivocation_update", "garbage_blob", "gaussian", "ipm", "label_flip", "mean_std", "scaled", "sign_flip",
    "wrong_digest",
]
