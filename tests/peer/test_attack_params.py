"""`--attack NAME:key=value`: every key an attack accepts changes what it sends, and any other key is refused."""
from __future__ import annotations

import pytest
import torch

from peer.byzantine.adversary import Adversary
from peer.byzantine.params import ATTACK_PARAMS, accepted
from simulation.attacks import forge_update
from simulation.config import SimConfig, SimError

N, F = 10, 3
VALUES = {"factor": (2, 7), "std": (0.5, 3), "z": (0.5, 2), "epsilon": (0.1, 2), "evals": (1, 20)}


def _honest(count: int = N - F, d: int = 50) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    mu = 0.01 * torch.randn(d, generator=g)
    return [{"w": mu + 0.01 * torch.randn(d, generator=g)} for _ in range(count)]


PROTOCOL = {"equivocate", "garbage"}  # not update functions: their keys act through the Adversary
UPDATE_KEYS = [(name, key) for name, keys in ATTACK_PARAMS.items() if name not in PROTOCOL for key in keys]


@pytest.mark.parametrize(("name", "key"), UPDATE_KEYS, ids=[f"{n}:{k}" for n, k in UPDATE_KEYS])
def test_every_accepted_strength_changes_the_forged_update(name: str, key: str) -> None:
    honest = _honest()
    low, high = (forge_update(f"{name}:{key}={v}", honest[0], honest, n=N, f=F, seed=1, rule="trimmed_mean")
                 for v in VALUES[key])
    assert not torch.equal(low["w"], high["w"])


def test_the_protocol_attacks_use_their_keys() -> None:
    update = {"w": torch.zeros(50)}
    low, high = (Adversary.parse(f"equivocate:std={v}").equivocation_update(update) for v in (0.5, 3))
    assert float(low["w"].std()) < float(high["w"].std())
    assert len(Adversary.parse("garbage:size=77").garbage_blob()) == 77
    assert ATTACK_PARAMS["equivocate"] == {"std", "pair"}  # pair: tests/cli/test_governance_walkthrough.py


@pytest.mark.parametrize("spec", ["alie:zz=1", "alie:n=5", "mimic:epsilon=2", "ipm:factor=3", "sign_flip:seed=1",
                                  "alie_noisy:epsilon=1", "silent:size=3"])
def test_a_key_the_attack_does_not_take_is_refused(spec: str) -> None:
    name, _, rest = spec.partition(":")
    key = rest.partition("=")[0]
    with pytest.raises(ValueError, match=f"takes no parameter '{key}'"):
        Adversary.parse(spec)
    if name != "silent":
        with pytest.raises(SimError, match="it takes"):
            SimConfig(peers=N, byzantine=F, attack=spec)


def test_noisy_variants_take_their_base_keys_and_the_noise_ratio() -> None:
    assert accepted("alie_noisy") == {"z", "noise_ratio"}
    assert Adversary.parse("alie_noisy:z=2,noise_ratio=0.5").params == {"z": 2, "noise_ratio": 0.5}
