"""The simulator's two figures: test accuracy per round, and each round's wall time split by phase."""
from __future__ import annotations

from pathlib import Path

from simulation.config import PHASES
from simulation.records import SimResult


def write_plots(result: SimResult, out: Path) -> list[Path]:
    """accuracy.png and phases.png under `out`; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rounds = [r.round for r in result.rounds]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([0, *rounds], [result.genesis_accuracy, *[r.accuracy for r in result.rounds]], marker="o")
    cfg = result.config
    ax.set(xlabel="round", ylabel="test accuracy", ylim=(0, 1),
           title=f"{cfg['task']}, {cfg['peers']} peers, {cfg['byzantine']} Byzantine ({cfg['attack']}), {cfg['rule']}")
    ax.grid(alpha=0.3)
    acc_path = out / "accuracy.png"
    fig.savefig(acc_path, dpi=120, bbox_inches="tight")
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    bottom = [0.0] * len(rounds)
    for phase in PHASES:
        values = [r.phase_seconds.get(phase, 0.0) for r in result.rounds]
        if any(values):
            ax.bar(rounds, values, bottom=bottom, label=phase)
            bottom = [b + v for b, v in zip(bottom, values)]
    ax.set(xlabel="round", ylabel="seconds", title="round wall time by phase")
    ax.legend(fontsize=7)
    phase_path = out / "phases.png"
    fig.savefig(phase_path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return [acc_path, phase_path]
