"""bench.robustness's meta names the attacks its cells hold (the doc and the figures iterate over that list)."""
from __future__ import annotations

from bench.robustness import ATTACKS, attacks_run


def test_a_run_of_other_attacks_is_reported_under_them() -> None:
    """Regression: meta["attacks"] was always the 12 default attacks, so a run with `--attacks alie_noisy
    ipm_noisy` (docs/robustness_noisy.md) was described as a run of attacks it never ran."""
    cells = [{"attack": a} for a in ("none", "ipm_noisy", "alie", "alie_noisy", "ipm_noisy")]
    assert attacks_run(cells) == ["alie", "ipm_noisy", "alie_noisy"]


def test_the_full_grid_keeps_its_order() -> None:
    cells = [{"attack": a} for a in ("none", *reversed(ATTACKS))]
    assert attacks_run(cells) == list(ATTACKS)
