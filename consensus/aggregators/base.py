"""What every rule receives and returns."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from consensus.errors import AggregationError


@dataclass(frozen=True)
class RuleInput:
    """The valid updates of a round as flat int32 rows, in canonical peer order."""

    rows: Sequence[np.ndarray]
    weights: Sequence[int]
    f: int
    workers: int | None = None
    #: the rows are averages over shared neighbours (NNM), so near-identical rows among them are expected and say
    #: nothing about copying; rules that count copies (centered_clipping's radius) do not count them here
    mixed: bool = False

    @property
    def n(self) -> int:
        return len(self.rows)

    @property
    def d(self) -> int:
        return self.rows[0].size


@dataclass(frozen=True)
class RuleOutput:
    values: np.ndarray  # flat int32 aggregate
    scores: list[int]  # one per row
    params: dict[str, Any] = field(default_factory=dict)  # the resolved parameters the rule used


def require(condition: bool, message: str) -> None:
    if not condition:
        raise AggregationError(message)


def check_int(name: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        raise AggregationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def no_extra(rule: str, params: dict[str, Any]) -> None:
    if params:
        raise AggregationError(f"rule {rule!r} got unknown parameter(s) {sorted(params)}")
