"""Which `--attack NAME:key=value` parameters each attack takes.

Why a table: a misspelt or foreign key (`alie:zz=3`, `mimic:epsilon=2`) used to be accepted and ignored, so an
experiment believed it ran a strength it never ran. Only the strengths a user may set are listed: `n`, `f`,
`seed`, `honest` and the rule the optimised attacks tune against come from the federation and the round.
"""
from __future__ import annotations

from collections.abc import Mapping

from peer.byzantine import noisy

ATTACK_PARAMS: dict[str, frozenset[str]] = {
    "sign_flip": frozenset({"factor"}), "scaled": frozenset({"factor"}), "gaussian": frozenset({"std"}),
    "alie": frozenset({"z"}), "ipm": frozenset({"epsilon"}), "alie_opt": frozenset({"evals"}),
    "ipm_opt": frozenset({"evals"}), "equivocate": frozenset({"std", "pair"}), "garbage": frozenset({"size"}),
}


def accepted(name: str) -> frozenset[str]:
    """The keys attack `name` takes; a `<attack>_noisy` variant also takes its `noise_ratio`."""
    base = noisy.base_name(name)
    return ATTACK_PARAMS.get(base, frozenset()) | (frozenset({"noise_ratio"}) if base != name else frozenset())


def check_params(name: str, params: Mapping[str, object]) -> None:
    """ValueError naming the first key `name` does not take, and the keys it does."""
    unknown = sorted(set(params) - accepted(name))
    if unknown:
        takes = ", ".join(sorted(accepted(name))) or "no parameters"
        raise ValueError(f"attack {name!r} takes no parameter {unknown[0]!r} (it takes: {takes})")


def parse_number(text: str) -> float | int:
    try:
        return int(text)
    except ValueError:
        return float(text)
