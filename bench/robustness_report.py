"""Tables, figures and docs/robustness.md from the robustness bench's cells (mean ± std over seeds)."""
from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
SHORT = {"nnm+trimmed_mean": "nnm+tm", "arc+nnm+trimmed_mean": "arc+nnm+tm",
         "bucketing+nnm+trimmed_mean": "bucket+nnm+tm", "centered_clipping": "cclip", "trimmed_mean": "trim_mean",
         "multi_krum": "multi_krum", "rescale+nnm+centered_clipping": "rescale+nnm+cclip",
         "rescale+arc+nnm+centered_clipping": "rescale+arc+nnm+cclip",
         "dedup+rescale+nnm+centered_clipping": "dedup+rescale+nnm+cclip"}


@dataclass(frozen=True)
class Setting:
    name: str
    task: str
    alpha: float
    rounds: int
    local_epochs: int
    batch_size: int
    lr: float


def stats(cells, setting, fraction, attack, rule, key="final_accuracy") -> tuple[float, float, int] | None:
    """(mean, std, seeds) of `key` in percent over the seeds of one cell; the 0 % row ignores `attack`."""
    vals = [100 * c[key] for c in cells if (c["setting"], c["fraction"], c["rule"]) == (setting, fraction, rule)
            and (fraction == 0 or c["attack"] == attack)]
    if not vals:
        return None
    return statistics.fmean(vals), statistics.pstdev(vals) if len(vals) > 1 else 0.0, len(vals)


def default_rule() -> str:
    from consensus.auto_rule import resolve_rule

    return resolve_rule("auto", 20, 6)


def claims(cells, meta) -> dict:
    """The issue's 'must show', for the default rule, per setting and attack."""
    rule = default_rule()
    out = {"default_rule": rule, "settings": {}}
    for s in meta["settings"]:
        clean = stats(cells, s["name"], 0.0, "none", "fedavg")
        if clean is None:
            continue
        rows = {}
        for fr, limit in ((0.2, 3.0), (0.3, 5.0)):
            for attack in meta["attacks"]:
                got = stats(cells, s["name"], fr, attack, rule)
                if got is not None:
                    rows[f"{int(100 * fr)}% {attack}"] = {"mean": round(got[0], 2), "std": round(got[1], 2),
                                                          "gap": round(clean[0] - got[0], 2),
                                                          "ok": clean[0] - got[0] <= limit}
        out["settings"][s["name"]] = {"clean_fedavg": round(clean[0], 2), "rows": rows,
                                      "all_ok": all(r["ok"] for r in rows.values()) if rows else None}
    return out


def _row_keys(meta) -> list[tuple[float, str]]:
    return [(0.0, "none")] + [(fr, a) for fr in meta["fractions"] if fr > 0 for a in meta["attacks"]]


def accuracy_table(cells, meta, setting: str) -> list[str]:
    rules = meta["rules"]
    out = ["| Byz. | attack | " + " | ".join(SHORT.get(r, r) for r in rules) + " |", "|---|---|" + "---|" * len(rules)]
    for fr, attack in _row_keys(meta):
        got = [stats(cells, setting, fr, attack, r) for r in rules]
        if all(g is None for g in got):
            continue
        best = max(g[0] for g in got if g is not None)
        fmt = ["—" if g is None else (f"**{g[0]:.1f}**±{g[1]:.1f}" if g[0] == best else f"{g[0]:.1f}±{g[1]:.1f}")
               for g in got]
        out.append(f"| {int(round(100 * fr))} % | {attack} | " + " | ".join(fmt) + " |")
    return out


def reward_table(cells, meta, fraction: float = 0.2) -> list[str]:
    rules = meta["rules"]
    out = ["| setting | attack | population | " + " | ".join(SHORT.get(r, r) for r in rules) + " |",
           "|---|---|---|" + "---|" * len(rules)]
    for s in meta["settings"]:
        for attack in meta["attacks"]:
            got = [stats(cells, s["name"], fraction, attack, r, "byzantine_reward_share") for r in rules]
            if all(g is None for g in got):
                continue
            fmt = ["—" if g is None else f"{g[0]:.1f}" for g in got]
            out.append(f"| {s['name']} | {attack} | {100 * fraction:.0f} | " + " | ".join(fmt) + " |")
    return out


def heatmap(cells, meta, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows, rules, settings = _row_keys(meta), meta["rules"], meta["settings"]
    fig, axes = plt.subplots(1, len(settings), figsize=(4.6 * len(settings) + 1.5, 0.24 * len(rows) + 2.2),
                             squeeze=False)
    im = None
    for k, (ax, s) in enumerate(zip(axes[0], settings)):
        grid = np.full((len(rows), len(rules)), np.nan)
        for i, (fr, attack) in enumerate(rows):
            for j, rule in enumerate(rules):
                got = stats(cells, s["name"], fr, attack, rule)
                grid[i, j] = np.nan if got is None else got[0]
        im = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
        for i in range(grid.shape[0]):
            for j in range(grid.shape[1]):
                if not np.isnan(grid[i, j]):
                    ax.text(j, i, f"{grid[i, j]:.0f}", ha="center", va="center", fontsize=5.5,
                            color="white" if grid[i, j] < 60 else "black")
        ax.set_xticks(range(len(rules)), [SHORT.get(r, r) for r in rules], rotation=50, ha="right", fontsize=7)
        ax.set_yticks(range(len(rows)), [f"{int(round(100 * fr))}% {a}" for fr, a in rows] if k == 0 else [],
                      fontsize=6.5)
        ax.set_title(s["name"], fontsize=9)
    fig.colorbar(im, ax=axes[0].tolist(), shrink=0.5, label="final test accuracy (%), mean of seeds")
    fig.suptitle(f"fedledger robustness: 20 peers, {len(meta['seeds'])} seeds per cell", fontsize=10)
    fig.savefig(path, dpi=140, bbox_inches="tight")
    plt.close(fig)


def fraction_figure(cells, meta, path: Path) -> str | None:
    """Accuracy vs Byzantine fraction, default rule vs FedAvg, under the attack worst for the default rule."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rule = default_rule()
    top = max(meta["fractions"])
    setting, worst, worst_acc = None, None, 101.0  # the worst cell among settings both rules ran under attack in
    for s in meta["settings"]:
        for attack in meta["attacks"]:
            got = stats(cells, s["name"], top, attack, rule)
            if got is not None and stats(cells, s["name"], top, attack, "fedavg") is not None and got[0] < worst_acc:
                setting, worst, worst_acc = s["name"], attack, got[0]
    if worst is None:
        return None
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for r, style in ((rule, "o-"), ("fedavg", "s--")):
        pts = [(fr, stats(cells, setting, fr, worst, r)) for fr in meta["fractions"]]
        pts = [(100 * fr, g) for fr, g in pts if g is not None]
        ax.errorbar([p for p, _ in pts], [g[0] for _, g in pts], yerr=[g[1] for _, g in pts], fmt=style,
                    capsize=3, label=r)
    ax.set_xlabel("Byzantine peers (%)")
    ax.set_ylabel("final test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"{setting}, attack {worst} (worst for {rule})", fontsize=9)
    ax.legend(fontsize=8)
    fig.savefig(path, dpi=140, bbox_inches="tight")
    plt.close(fig)
    return worst


def write_all(cells, meta, out: Path, stem: str, doc: bool = True) -> None:
    """JSON, heat map, fraction figure and the doc."""
    claim = claims(cells, meta)
    (out / f"{stem}.json").write_text(json.dumps({"meta": meta, "claim": claim, "cells": cells}, indent=1))
    heatmap(cells, meta, out / f"{stem}.png")
    worst = fraction_figure(cells, meta, out / f"{stem}_fraction.png")
    if doc:
        from bench.robustness_doc import render

        (DOCS / "robustness.md").write_text(render(cells, meta, claim, worst))
