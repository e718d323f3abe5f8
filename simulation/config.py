"""What a simulation runs: the federation's parameters (`SimConfig`), the attacks and rules it accepts, and the
largest f a rule tolerates for n inputs."""
from __future__ import annotations

from dataclasses import dataclass, replace

from consensus.auto_rule import resolve_rule
from consensus.feasibility import max_f
from peer.byzantine.adversary import Adversary, AttackKind
from peer.learning.tasks import DigitsTask, Task, get_task

ATTACKS = ("none", "sign_flip", "gaussian", "scaled", "label_flip", "alie", "ipm",
           "min_max", "min_sum", "fang", "alie_opt", "ipm_opt", "mimic",
           # dedup-evading: the shared vector plus each peer's own noise (`peer.byzantine.noisy`)
           "alie_noisy", "ipm_noisy", "min_max_noisy", "min_sum_noisy", "alie_opt_noisy", "ipm_opt_noisy",
           "mimic_noisy")
RULES = ("fedavg", "krum", "multi_krum", "trimmed_mean", "median", "bulyan", "centered_clipping",
         "nnm+trimmed_mean", "arc+nnm+trimmed_mean", "bucketing+nnm+trimmed_mean", "arc+nnm+multi_krum",
         "nnm+centered_clipping", "rescale+nnm+centered_clipping",
         "dedup+rescale+nnm+centered_clipping")
PHASES = ("train", "encode", "seal", "ipfs", "chain", "aggregate", "vote")


class SimError(Exception):
    """A simulation cannot be configured or run (bad flags, too many Byzantine peers for the rule, ...)."""


@dataclass(frozen=True)
class SimConfig:
    """One simulated federation. `alpha=None` means an IID split; `f=None` means f = number of Byzantine peers."""

    task: str = "digits"
    peers: int = 20
    byzantine: int = 0
    attack: str = "none"
    rule: str = "fedavg"
    f: int | None = None
    rounds: int = 10
    alpha: float | None = 1.0
    local_epochs: int = 1
    batch_size: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    hidden: int | None = None          # digits only: MLP width (64 default; ~1000 gives a ~1M-param model)
    scale_bits: int = 20
    batched_training: bool = False     # vectorised equivalent of train_local (ledger-free benches)
    reward_per_round: int = 10**18
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attack.partition(":")[0] not in ATTACKS:
            raise SimError(f"unknown attack {self.attack!r}; expected one of {', '.join(ATTACKS)}")
        if ":" in self.attack:  # parameters as a peer's --attack takes them: "alie_noisy:noise_ratio=0.5"
            try:
                if Adversary.parse(self.attack).attack.kind is not AttackKind.UPDATE:
                    raise ValueError(f"only update attacks take parameters, not {self.attack!r}")
            except ValueError as exc:
                raise SimError(str(exc)) from None
        if self.peers < 2:
            raise SimError("a federation needs at least 2 peers")
        if not 0 <= self.byzantine < self.peers:
            raise SimError(f"byzantine must be in [0, peers); got {self.byzantine} of {self.peers}")
        if self.byzantine and self.attack == "none":
            raise SimError("Byzantine peers need an attack (--attack)")
        if self.rounds < 1:
            raise SimError("rounds must be >= 1")
        object.__setattr__(self, "rule", resolve_rule(self.rule, self.peers, self.effective_f))

    @property
    def effective_f(self) -> int:
        return self.byzantine if self.f is None else self.f

    def build_task(self) -> Task:
        if self.hidden is not None:
            if self.task != "digits":
                raise SimError("--hidden applies to the digits task only")
            return DigitsTask(hidden=self.hidden)
        return get_task(self.task)


def clamp_f(rule: str, n: int, f: int) -> int:
    """Largest f ≤ the requested one that `rule` accepts for n inputs (`consensus.max_f`); the bench reports
    the f actually used."""
    return max(0, min(f, max_f(rule, n) if n > 0 else 0))

def with_fraction(config: SimConfig, fraction: float) -> SimConfig:
    """`config` with round(fraction · peers) Byzantine peers."""
    return replace(config, byzantine=int(round(fraction * config.peers)))
