"""docs/robustness.md from the robustness bench's cells (see bench/robustness.py)."""
from __future__ import annotations

from bench.robustness_report import accuracy_table, default_rule, reward_table, stats


def _setup(meta) -> list[str]:
    rounds = "; ".join(f"{s['name']}: {s['rounds']} rounds × {s['local_epochs']} local epochs, "
                       f"batch {s['batch_size']}, lr {s['lr']}" for s in meta["settings"])
    return [
        "## Set-up",
        "",
        "- Every run is the protocol's own code path (`simulation/engine.py`, ledger-free transport): local SGD per",
        "  peer (`peer.learning.training.train_batched`), canonical fixed-point encoding, exact aggregation, exclusion",
        "  and reward split via `consensus.round_outcome.compute_round_outcome`.",
        "- 20 peers; scikit-learn `load_digits` (MLP 64→64→10) with a Dirichlet(α) label-skewed split, and",
        "  `load_breast_cancer` (logistic regression), Dirichlet(1.0); test accuracy on the fixed 20 % held-out split.",
        f"- Rounds were shrunk, not the attacks: {rounds}. Accuracies are therefore below converged values",
        "  (clean FedAvg reaches ~95 % on digits after 20 rounds, ~84–86 % after 5).",
        "- `f` given to the rules = the number of Byzantine peers (clean runs: f = 2), capped at what the rule",
        "  accepts.",
        "- Attacks (`peer/byzantine/adversary.py`, `peer/byzantine/optimised.py`; a fixed random subset of peers,",
        "  all omniscient: a member can unseal every other member's blob before the commit deadline):",
        "  sign flip −4×; scaled 20×; Gaussian N(0, 1); label flip y → C−1−y; ALIE mean − z·std, z from (n, f);",
        "  IPM −0.1 × mean; min-max / min-sum (Shejwalkar & Houmansadr 2021, std perturbation, γ by the authors'",
        "  search); fang (Fang et al. 2020: the Krum attack against Krum-based rules, the trimmed-mean attack",
        "  otherwise); alie_opt / ipm_opt (ByzFL's line search, 20 evaluations, maximising the aggregate's distance",
        "  to the honest mean *under the federation's own exact rule*); mimic (Karimireddy et al. 2022: every",
        "  Byzantine peer copies the honest update furthest along the top principal direction).",
        f"- Default rule (`rule = auto` for n = 20): **{default_rule()}** (`consensus/auto_rule.py`).",
        f"- Seeds per cell: {', '.join(map(str, meta['seeds']))}; tables give mean ± population std over seeds.",
        "",
    ]


def render(cells, meta, claim, worst, rule_cells=None, screening=None) -> str:
    rule = claim["default_rule"]
    lines = [
        "# Robustness of the aggregation rules",
        "",
        f"Produced by `nice -n 10 python -m bench.robustness` — **{meta.get('label') or 'full grid'}**. "
        + (f"{meta['runs']} runs on {meta['workers']} worker processes ({meta['machine']})." if meta.get("label") else
           f"{meta['runs']} of {meta['planned_runs']} planned runs, {meta['wall_seconds']:.0f} s wall on "
           f"{meta['workers']} worker processes ({meta['machine']}; load average {meta['load_average_at_start'][0]} "
           f"at start, {meta['load_average_at_end'][0]} at end)."),
        "Raw cells: `bench/results/robustness.json` (and `.jsonl`); figures: `bench/results/robustness.png`,",
        "`bench/results/robustness_fraction.png`.",
        "",
    ]
    lines += _setup(meta)
    lines += ["## The claim checked (default rule vs clean FedAvg)", "",
              "Targets: within 3 points of clean FedAvg at 20 % Byzantine and within 5 at 30 %, every attack, on",
              "digits α = 1.0 and breast cancer (mean of the seeds); digits α = 0.3 reported as measured.", ""]
    for name, s in claim["settings"].items():
        ok = s["all_ok"]
        if ok is None:
            lines += [f"### {name}: clean FedAvg {s['clean_fedavg']:.1f} % — {rule} not run under attack here", ""]
            continue
        lines += [f"### {name}: clean FedAvg {s['clean_fedavg']:.1f} % — all targets met: **{'yes' if ok else 'no'}**",
                  "", f"| cell | {rule} | gap (points) | target met |", "|---|---|---|---|"]
        for key, r in s["rows"].items():
            verdict = "yes" if r["ok"] else "**no**"
            lines.append(f"| {key} | {r['mean']:.1f} ± {r['std']:.1f} | {r['gap']:.1f} | {verdict} |")
        lines.append("")
    lines += _summary(cells, meta, claim)
    lines += ["## Rewards paid to the Byzantine peers", "",
              "Share (%) of all rewards paid over the run that went to Byzantine peers, at 20 % Byzantine (their",
              "population share is 20 %), mean of the seeds. Scores are `consensus.rewards.contribution_scores`:",
              "the rule's score × min(p, 1/p) of the update's component along the aggregate, near-identical updates",
              "sharing one score.", ""]
    lines += reward_table(cells, meta) + [""]
    if worst:
        lines += [f"Accuracy vs Byzantine fraction for {rule} vs FedAvg under `{worst}` (the attack worst for the",
                  "default rule at the largest fraction): `bench/results/robustness_fraction.png`.", ""]
    lines += ["## Final accuracy (%) per setting, mean ± std over seeds", "", "Bold = best rule of the row.", ""]
    for s in meta["settings"]:
        lines += [f"### {s['name']}", ""] + accuracy_table(cells, meta, s["name"]) + [""]
    if screening:
        smeta = {**meta, "seeds": [0], "rules": sorted({c["rule"] for c in screening}, key=_rule_order),
                 "fractions": sorted({c["fraction"] for c in screening})}
        lines += ["## Candidates screened for the default (digits α = 1.0, 10 rounds, seed 0)", "",
                  "`bench/results/robustness_screening.jsonl`: one seed, the attacks worst for the previous default",
                  "(arc+nnm+trimmed_mean) first, then every attack for the finalists; `—` = not run. Run as",
                  "`nice -n 10 python -m bench.robustness --settings \"digits a=1.0 (10 rounds)\" --seeds 0",
                  "--fractions 0.0 0.2 0.3 --attacks … --rules … --out DIR --no-doc`.", ""]
        lines += accuracy_table(screening, smeta, "digits a=1.0 (10 rounds)") + [""]
    if rule_cells:
        rmeta = {**meta, "seeds": [0], "rules": sorted({c["rule"] for c in rule_cells}, key=_rule_order),
                 "fractions": sorted({c["fraction"] for c in rule_cells})}
        lines += ["## Every rule, one seed (digits α = 1.0, seed 0)", "",
                  "The rule comparison the default was chosen from (`bench/results/robustness_rules_seed0.jsonl`,",
                  "same settings; one seed, so 1–3 points between rules are noise; the heat map",
                  "`bench/results/robustness.png` draws it). Cells missing: the run was stopped to fit the time box.",
                  ""] + accuracy_table(rule_cells, rmeta, "digits a=1.0") + [""]
    return "\n".join(lines)


def _summary(cells, meta, claim) -> list[str]:
    """What the numbers say, computed (so a re-run cannot leave stale prose behind)."""
    rule = claim["default_rule"]
    out = ["### Summary", ""]
    for name, s in claim["settings"].items():
        rows = s["rows"]
        if not rows:
            continue
        met = sum(r["ok"] for r in rows.values())
        worst_key = min(rows, key=lambda k: rows[k]["mean"])
        worst = rows[worst_key]
        out.append(f"- {name}: {met} of {len(rows)} (fraction, attack) cells within target; worst {worst_key} at "
                   f"{worst['mean']:.1f} ± {worst['std']:.1f} % (clean FedAvg {s['clean_fedavg']:.1f} %).")
        prev = _met(cells, meta, name, s["clean_fedavg"], PREVIOUS_DEFAULT)
        if prev is not None and rule != PREVIOUS_DEFAULT:
            out.append(f"  Previous default {PREVIOUS_DEFAULT} on the same cells: {prev[0]} of {prev[1]}; worst "
                       f"{prev[2]:.1f} %; mean gap {prev[3]:.1f} points against {_mean_gap(rows):.1f} now.")
        nxt = _met(cells, meta, name, s["clean_fedavg"], CANDIDATE)
        if nxt is not None and rule != CANDIDATE:
            paid = stats(cells, name, 0.3, "gaussian", CANDIDATE, "byzantine_reward_share")
            out.append(f"  Candidate {CANDIDATE} (not the default): {nxt[0]} of {nxt[1]}; worst {nxt[2]:.1f} %; "
                       f"mean gap {nxt[3]:.1f} points" + (f"; but it pays Gaussian attackers {paid[0]:.1f} % of the "
                       "rewards at 30 % (unexplained yet)." if paid else "."))
    shares = [(stats(cells, st["name"], 0.2, a, rule, "byzantine_reward_share"), st["name"], a)
              for st in meta["settings"] for a in meta["attacks"]]
    shares = [(g[0], n, a) for g, n, a in shares if g is not None]
    if shares:
        top = max(shares)
        below = sum(v < 20.0 for v, _, _ in shares)
        zero = sum(v == 0.0 for v, _, _ in shares)
        out.append(f"- Byzantine reward share under {rule} at 20 % Byzantine: below the 20 % population share in "
                   f"{below} of {len(shares)} (setting, attack) cells, exactly 0 in {zero}; largest {top[0]:.1f} % "
                   f"({top[1]}, {top[2]}).")
    out += ["- The accuracy std over 3 seeds is large on digits with 5 rounds (often 5–10 points): the shrunk",
            "  training leaves the model mid-climb, where an attack that slows it costs many points. The claim is",
            "  judged on the 10-round digits setting, where clean FedAvg has climbed to ~91 %.",
            "- Why `rescale+`: the robust rules shrink the step. Trimming, ARC's clipping and NNM's mixing pull",
            "  heterogeneous updates to the centre, and the inner-product attacks (ipm, ipm_opt, ALIE, min-sum) put",
            "  f updates near the origin, inside the honest spread, where the rule keeps them: arc+nnm+trimmed_mean",
            "  pointed the right way at a fraction of the honest mean's length (ipm 30 %: ~60 %). `rescale` keeps",
            "  the inner rule's direction and takes the length the trimmed mean of the updates' components along it",
            "  gives (one dimension: less spread than the updates themselves, though unequal local data sizes",
            "  still spread the components ~8× on seed 2, and trimming f per side biases s low), never shorter,",
            "  at most 4×.",
            "  Lengthening amplifies a bad direction too: behind centered clipping alone (no NNM) the line-searched",
            "  ipm_opt drove it to 1.7 % (30 %, seed 2; `--rules rescale+centered_clipping --seeds 2 --fractions 0.3",
            "  --attacks ipm ipm_opt`), so it belongs behind a rule whose direction is robust (NNM + clipping).",
            "  Seed 2's split is the hard one: IPM at 30 % still leaves the default at 62.5 % / ipm_opt 36.1 % there.",
            "- mimic is a heterogeneity attack: the f Byzantine peers copy one honest update, so they are an",
            "  over-weighted honest client, not outliers. Plain FedAvg loses as much under it (see the FedAvg",
            "  column); no rule that gives each member one vote and keeps no history across rounds removes that",
            "  bias, and deduplicating copies would be evaded by adding noise to them.",
            ""]
    return out


PREVIOUS_DEFAULT = "arc+nnm+trimmed_mean"
CANDIDATE = "rescale+arc+nnm+centered_clipping"  # better accuracy on digits, measured after the default was chosen


def _met(cells, meta, setting: str, clean: float, rule: str) -> tuple[int, int, float, float] | None:
    """(cells within target, cells, worst mean, mean gap) of `rule` in one setting, None when it was not run."""
    got = [(stats(cells, setting, fr, a, rule), limit) for fr, limit in ((0.2, 3.0), (0.3, 5.0))
           for a in meta["attacks"]]
    got = [(g[0], limit) for g, limit in got if g is not None]
    if not got:
        return None
    return (sum(clean - m <= limit for m, limit in got), len(got), min(m for m, _ in got),
            sum(clean - m for m, _ in got) / len(got))


def _mean_gap(rows) -> float:
    return sum(r["gap"] for r in rows.values()) / len(rows)


def _rule_order(rule: str) -> int:
    from bench.robustness import RULES

    return RULES.index(rule) if rule in RULES else len(RULES)


__all__ = ["render", "stats"]
