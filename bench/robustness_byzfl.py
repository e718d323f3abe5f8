"""Ours vs ByzFL's definition of the same rule, on the same inputs, under the same attack (issue 15).

For each (rule, attack, Byzantine fraction, seed) the ledger-free federation of bench.robustness (20 peers, digits,
α=1.0, 10 rounds, 2 local epochs, batch 16, lr 0.1, f = number of Byzantine peers) runs twice: once with our exact
rule (the protocol's path), once with ByzFL's float definition of the rule (`bench.byzfl_rules`) put in its place
through `SimEngine(aggregate_override=...)`: every round the override receives exactly the decoded update vectors
(and f) our rule received, aggregates them in float64, and the result is quantized and encoded like any aggregate,
so training continues from it. The attacks are ours (peer/byzantine/), the same in both runs; the line-searching
ones (alie_opt, ipm_opt) search against the definition that aggregates (ours in our run, ByzFL's in the ByzFL run,
through `SimEngine(attack_aggregator=...)`): each definition faces the attacker tuned to it. A last comparison pits
our default (dedup+rescale+nnm+centered_clipping) against ByzFL's best composition under each attack
(arc+nnm+trimmed_mean or nnm+centered_clipping, in float).

    python -m bench.robustness_byzfl     # → bench/results/robustness_byzfl.{json,jsonl}, docs/robustness_byzfl.md
    python -m bench.robustness_byzfl --report-only   # rebuild JSON and doc from the .jsonl
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bench.cells import read_cells, run_cells

if TYPE_CHECKING:
    from consensus.codec import ModelSpec
    from consensus.commitment import CommittedUpdate
    from consensus.round_outcome import RoundOutcome

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
DOC = ROOT / "docs" / "robustness_byzfl.md"
#: 8 more seeds (3-10) for the pairs 3 seeds left in doubt; see --more-seeds.
MORE_SEEDS = RESULTS / "robustness_byzfl_more_seeds"
RULES = ("trimmed_mean", "median", "multi_krum", "centered_clipping", "nnm+trimmed_mean", "arc+nnm+trimmed_mean",
         "bucketing+nnm+trimmed_mean")
ATTACKS = ("sign_flip", "gaussian", "label_flip", "alie", "ipm", "alie_opt", "ipm_opt", "mimic")
FRACTIONS = (0.2, 0.3)
SEEDS = (0, 1, 2)
PEERS = 20
OUR_DEFAULT = "dedup+rescale+nnm+centered_clipping"
BYZFL_BEST = ("arc+nnm+trimmed_mean", "nnm+centered_clipping")
TOLERANCE = 1.0  # accuracy points: "no worse" = ours mean >= ByzFL mean - TOLERANCE


class ByzflOverride:
    """SimEngine's aggregate_override: ByzFL's definition on our rule's inputs; records how far apart the two
    aggregates of the same inputs are (relative L2 distance, per round)."""

    def __init__(self, rule: str, seed: int, spec: ModelSpec, scale_bits: int) -> None:
        from bench.byzfl_rules import ByzflRule

        self.rule, self.spec, self.scale_bits = ByzflRule(rule, seed), spec, scale_bits
        self.gaps: list[float] = []

    def attack_target(self, vectors: Sequence[np.ndarray], f: int) -> np.ndarray:
        """What alie_opt/ipm_opt search against in the ByzFL run: this run's ByzFL definition in its current
        state (CenteredClipping's previous output, the bucketing stream), on a copy so the search leaves the
        aggregation that follows untouched. The symmetric setting: each definition faces an attacker tuned to it."""
        return copy.deepcopy(self.rule)(np.stack(vectors).astype(np.float64), f)

    def __call__(self, round: int, committed: Sequence[CommittedUpdate], f: int, outcome: RoundOutcome) -> bytes:
        from consensus.codec import decode_ints, encode_ints, quantize

        ordered = sorted(committed, key=lambda u: int(u.member, 16))  # canonical order, as consensus sees them
        rows = [decode_ints(u.update, spec=self.spec, scale_bits=self.scale_bits).values
                for u in ordered if u.update is not None]  # ledger-free: every committed update is present
        x = np.ldexp(np.stack(rows).astype(np.float64), -self.scale_bits)
        agg = self.rule(x, f)
        ours = np.ldexp(decode_ints(outcome.aggregate_update).values.astype(np.float64), -self.scale_bits)
        self.gaps.append(float(np.linalg.norm(agg - ours) / max(float(np.linalg.norm(ours)), 1e-12)))
        return encode_ints(self.spec, quantize(agg, self.scale_bits), scale_bits=self.scale_bits)


def _cell(job: tuple) -> dict:
    """One run: job = (impl "ours"|"byzfl", rule, attack, fraction, seed)."""
    impl, rule, attack, fraction, seed = job
    import torch

    torch.set_num_threads(1)
    from simulation.config import SimConfig
    from simulation.engine import SimEngine

    byzantine = int(round(fraction * PEERS))
    cfg = SimConfig(task="digits", peers=PEERS, byzantine=byzantine, attack=attack, rule=rule, f=byzantine,
                    rounds=10, alpha=1.0, local_epochs=2, batch_size=16, lr=0.1, seed=seed, batched_training=True)
    started = time.perf_counter()
    engine = SimEngine(cfg)
    override = None
    if impl == "byzfl":
        override = ByzflOverride(rule, seed, engine.spec, cfg.scale_bits)
        engine.aggregate_override = override
        engine.attack_aggregator = override.attack_target
    result = engine.run()
    return {"impl": impl, "rule": rule, "attack": attack, "fraction": fraction, "seed": seed,
            "f": result.config["effective_f"], "final_accuracy": result.final_accuracy,
            "accuracy_curve": [round(r.accuracy, 4) for r in result.rounds],
            "gap_to_ours_same_inputs": [round(g, 4) for g in override.gaps] if override else [],
            "final_model_hash": result.final_model_hash, "seconds": round(time.perf_counter() - started, 2)}


def jobs(rules: Sequence[str], attacks: Sequence[str], fractions: Sequence[float], seeds: Sequence[int],
         best: bool = True) -> list[tuple]:
    """Seed-major: a run cut short has every pair for its first seeds."""
    out: list[tuple] = []
    for seed in seeds:
        for fr in fractions:
            for a in attacks:
                out += [(impl, rule, a, fr, seed) for rule in rules for impl in ("ours", "byzfl")]
                if best:
                    out += [("ours", OUR_DEFAULT, a, fr, seed), ("byzfl", "nnm+centered_clipping", a, fr, seed)]
    return out


def _key(c: dict) -> tuple:
    return c["impl"], c["rule"], c["attack"], c["fraction"], c["seed"]


def _stats(cells: list[dict], impl: str, rule: str, attack: str, fraction: float) -> tuple[float, float, int]:
    acc = [100 * c["final_accuracy"] for c in cells
           if (c["impl"], c["rule"], c["attack"], c["fraction"]) == (impl, rule, attack, fraction)]
    return (float(np.mean(acc)), float(np.std(acc)), len(acc)) if acc else (float("nan"), float("nan"), 0)


def summarise(cells: list[dict]) -> dict:
    """Per (rule, attack, fraction): ours and ByzFL mean ± std (population std over seeds), difference, no-worse;
    and our default vs ByzFL's best composition."""
    pairs, best = [], []
    for rule in RULES:
        for fr in FRACTIONS:
            for a in ATTACKS:
                o, b = _stats(cells, "ours", rule, a, fr), _stats(cells, "byzfl", rule, a, fr)
                if o[2] and b[2]:
                    gaps = [g for c in cells if _key(c)[:4] == ("byzfl", rule, a, fr)
                            for g in c["gap_to_ours_same_inputs"]]
                    pairs.append({"rule": rule, "attack": a, "fraction": fr, "ours": o[:2], "byzfl": b[:2],
                                  "seeds": min(o[2], b[2]), "diff": o[0] - b[0], "no_worse": o[0] >= b[0] - TOLERANCE,
                                  "median_gap_same_inputs": float(np.median(gaps)) if gaps else None})
    for fr in FRACTIONS:
        for a in ATTACKS:
            o = _stats(cells, "ours", OUR_DEFAULT, a, fr)
            cands = {r: _stats(cells, "byzfl", r, a, fr) for r in BYZFL_BEST}
            cands = {r: s for r, s in cands.items() if s[2]}
            if o[2] and cands:
                r, b = max(cands.items(), key=lambda kv: kv[1][0])
                best.append({"attack": a, "fraction": fr, "ours": o[:2], "byzfl_rule": r, "byzfl": b[:2],
                             "diff": o[0] - b[0], "no_worse": o[0] >= b[0] - TOLERANCE})
    return {"pairs": pairs, "default_vs_byzfl_best": best}


def pooled(cells: list[dict], extra: list[dict]) -> list[dict]:
    """The pairs that `extra` (a run of more seeds, e.g. for the pairs 3 seeds leave in doubt) covers, over the
    seeds of both runs: ours vs ByzFL, the paired difference per seed (same seed = same data split and same
    Byzantine peers) with its standard error, and the verdict on all seeds."""
    by_key = {_key(c): c for c in [*cells, *extra]}
    out = []
    for rule, a, fr in sorted({(c["rule"], c["attack"], c["fraction"]) for c in extra}):
        seeds = sorted({k[4] for k in by_key if k[1:4] == (rule, a, fr) and ("ours", rule, a, fr, k[4]) in by_key
                        and ("byzfl", rule, a, fr, k[4]) in by_key})
        if len(seeds) < 2:
            continue
        o = np.array([100 * by_key[("ours", rule, a, fr, s)]["final_accuracy"] for s in seeds])
        b = np.array([100 * by_key[("byzfl", rule, a, fr, s)]["final_accuracy"] for s in seeds])
        d = o - b
        out.append({"rule": rule, "attack": a, "fraction": fr, "seeds": seeds, "ours": [o.mean(), o.std()],
                    "byzfl": [b.mean(), b.std()], "diff": float(d.mean()),
                    "diff_se": float(d.std(ddof=1) / np.sqrt(len(d))), "ours_ahead": int((d > 0).sum()),
                    "no_worse": bool(o.mean() >= b.mean() - TOLERANCE)})
    return out


def _pm(ms: tuple[float, float] | list[float]) -> str:
    return f"{ms[0]:.1f} ± {ms[1]:.1f}"


def _verdict(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows]


def _more_seeds_section(pairs: list[dict], summary: dict) -> list[str]:
    """The pooled table of `pooled` and the verdict over all seeds (a pair's pooled verdict replaces its 3-seed one)."""
    more = summary.get("more_seeds") or []
    if not more:
        return []
    final = {(p["rule"], p["attack"], p["fraction"]): p["no_worse"] for p in [*pairs, *more]}
    lines = ["", f"## The same pairs over more seeds (`{summary['more_seeds_from']}`)", "",
             "Pairs re-run with more seeds, pooled with the seeds above. *paired diff* = mean over seeds of "
             "ours − ByzFL on the same seed, ± its standard error; *ahead* = seeds where ours is higher.", ""]
    lines += _table(["rule", "attack", "Byz.", "seeds", "ours", "ByzFL def.", "paired diff", "ahead", "no worse"],
                    [[p["rule"], p["attack"], f"{int(100 * p['fraction'])} %", str(len(p["seeds"])), _pm(p["ours"]),
                      _pm(p["byzfl"]), f"{p['diff']:+.2f} ± {p['diff_se']:.2f}",
                      f"{p['ours_ahead']}/{len(p['seeds'])}", _verdict(p["no_worse"])] for p in more])
    bad = [k for k, v in final.items() if not v]
    return lines + ["", f"**With all seeds**: {sum(final.values())} of {len(final)} pairs no worse"
                    + (" (not: " + "; ".join(f"{r}, {a}, {int(100 * f)} %" for r, a, f in bad) + ")." if bad else ".")]


def write_doc(summary: dict, meta: dict, path: Path = DOC) -> None:
    pairs, best = summary["pairs"], summary["default_vs_byzfl_best"]
    ok = sum(p["no_worse"] for p in pairs)
    worst = min(pairs, key=lambda p: p["diff"]) if pairs else None
    lines = [
        "# Ours vs ByzFL's definitions, same attack, same inputs", "",
        "Issue 15: *where ByzFL has the same attack and rule, ours is no worse on the same inputs.* Produced by "
        f"`{meta['command']}` ({meta['wall_seconds']:.0f} s wall on {meta['workers']} worker(s), {meta['machine']}; "
        f"/proc/loadavg before: {meta['loadavg_before']}, after: {meta['loadavg_after']}).", "",
        "Setup: the ledger-free federation of `bench.robustness` (20 peers, digits, α = 1.0, 10 rounds, 2 local "
        "epochs, batch 16, lr 0.1, f = number of Byzantine peers), seeds " + ", ".join(map(str, meta["seeds"])) + ". "
        "Each cell runs twice: with our exact rule, and with ByzFL's float64 definition of the same rule "
        "(`bench/byzfl_rules.py`, from ByzFL's source, ByzFL's defaults) aggregating, every round, exactly the "
        "decoded updates and f our rule receives (`SimEngine(aggregate_override=...)`); its output is quantized "
        "and applied like ours, so training continues from it. Attacks are ours, identical in both runs, "
        "except that alie_opt / ipm_opt line-search against the definition that aggregates (ours in our run, "
        "ByzFL's in the ByzFL run: `SimEngine(attack_aggregator=...)`), so each faces the attacker tuned to it.", "",
        f"**Criterion**: \"no worse\" = ours mean final accuracy ≥ ByzFL-definition mean − {TOLERANCE:g} point. "
        f"Std is over seeds (population). *gap* = median over rounds and seeds of ‖ByzFL − ours‖ / ‖ours‖ for the "
        "two aggregates of the *same* inputs in the ByzFL run (0.00 = the definitions agree up to rounding).", "",
        f"**Headline**: {ok} of {len(pairs)} (rule, attack, fraction) pairs no worse"
        + (f"; worst difference {worst['diff']:+.2f} points ({worst['rule']}, {worst['attack']}, "
           f"{int(100 * worst['fraction'])} %)." if worst else "."), "",
        "Where the definitions differ (everything else is the same definition, exact vs float): multi_krum scores "
        "n−f−2 neighbours (the paper's), ByzFL n−f−1; centered_clipping: ours starts each round from the "
        "coordinate-wise median with τ = distance of the (n−2f)-th nearest update (a group of near-identical updates "
        "counted once) and 3 iterations, ByzFL starts "
        "from its previous output (zero at first) with τ = 100 and 1 iteration; bucketing: ours orders by hash of "
        "the round's updates, ByzFL permutes at random (bucket size 2 in both; ByzFL's default s = 1 would not "
        "bucket at all); median of an even count: both average the two middle values.", "",
    ]
    lines += _table(["rule", "attack", "Byz.", "ours", "ByzFL def.", "diff", "no worse", "gap"],
                    [[p["rule"], p["attack"], f"{int(100 * p['fraction'])} %", _pm(p["ours"]), _pm(p["byzfl"]),
                      f"{p['diff']:+.2f}", _verdict(p["no_worse"]),
                      "" if p["median_gap_same_inputs"] is None else f"{p['median_gap_same_inputs']:.2f}"]
                     for p in pairs])
    lines += _more_seeds_section(pairs, summary)
    if best:
        lines += ["", f"## Our default ({OUR_DEFAULT}) vs ByzFL's best composition", "",
                  "ByzFL's best = the higher mean of arc+nnm+trimmed_mean and nnm+centered_clipping (float, ByzFL "
                  "defaults) under that attack and fraction.", ""]
        lines += _table(["attack", "Byz.", "ours (default)", "ByzFL best", "rule", "diff", "no worse"],
                        [[b["attack"], f"{int(100 * b['fraction'])} %", _pm(b["ours"]), _pm(b["byzfl"]),
                          b["byzfl_rule"], f"{b['diff']:+.2f}", _verdict(b["no_worse"])] for b in best])
    lines += ["", meta.get("notes", "")]
    path.write_text("\n".join(lines).rstrip() + "\n")


def _shown(path: Path) -> str:
    """The path as the doc shows it: relative to the repository when inside it, absolute otherwise."""
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules", nargs="+", default=list(RULES))
    ap.add_argument("--attacks", nargs="+", default=list(ATTACKS))
    ap.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--no-best", action="store_true", help="skip our default vs ByzFL's best composition")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--doc", type=Path, default=DOC)
    ap.add_argument("--resume", action="store_true", help="keep the cells already in the .jsonl, run the rest")
    ap.add_argument("--report-only", action="store_true", help="rebuild JSON and doc from the .jsonl")
    ap.add_argument("--more-seeds", type=Path, default=MORE_SEEDS,
                    help="a run of more seeds for some pairs (its .jsonl), pooled into a second table")
    ap.add_argument("--notes", default="", help="text appended to the doc (what surprised, what is worse and why)")
    args = ap.parse_args(argv)
    extra_log = args.more_seeds / "robustness_byzfl.jsonl"
    if args.more_seeds not in (MORE_SEEDS, args.out) and not extra_log.exists():
        raise SystemExit(f"robustness_byzfl: --more-seeds {args.more_seeds} holds no robustness_byzfl.jsonl\n"
                         "hint: pass a directory given as --out to an earlier run of this bench")
    args.out.mkdir(parents=True, exist_ok=True)
    log, summary_path = args.out / "robustness_byzfl.jsonl", args.out / "robustness_byzfl.json"
    todo = jobs(args.rules, args.attacks, args.fractions, args.seeds, best=not args.no_best)
    load_before, started = Path("/proc/loadavg").read_text().split()[:3], time.perf_counter()
    if not args.report_only:
        done = set()
        if args.resume and log.exists():
            done = {_key(c) for c in read_cells(log)}
        elif log.exists():
            log.write_text("")
        run = [j for j in todo if j not in done]
        print(f"{len(run)} runs on {args.workers} worker(s) ({len(done)} already done)", flush=True)
        run_cells(_cell, run, args.workers, log,
                  lambda c: f"{c['impl']} {c['rule']} {c['attack']} {int(100 * c['fraction'])}% "
                            f"s{c['seed']}: {100 * c['final_accuracy']:.1f} ({c['seconds']} s)")
    cells = read_cells(log)
    meta = {"command": "python -m bench.robustness_byzfl " + " ".join(argv if argv is not None else sys.argv[1:]),
            "wall_seconds": round(time.perf_counter() - started, 1), "workers": args.workers,
            "loadavg_before": " ".join(load_before),
            "loadavg_after": " ".join(Path("/proc/loadavg").read_text().split()[:3]),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "seeds": sorted({c["seed"] for c in cells}), "planned_runs": len(todo), "runs": len(cells),
            "tolerance_points": TOLERANCE, "notes": args.notes}
    if args.report_only and summary_path.exists():
        old = json.loads(summary_path.read_text())["meta"]
        meta.update({k: old[k] for k in ("command", "wall_seconds", "workers", "loadavg_before", "loadavg_after")})
        meta["notes"] = args.notes or old.get("notes", "")
    summary = summarise(cells)
    if args.more_seeds.resolve() != args.out.resolve() and extra_log.exists():
        summary.update(more_seeds=pooled(cells, read_cells(extra_log)),
                       more_seeds_from=_shown(extra_log))
    summary_path.write_text(json.dumps({"meta": meta, **summary, "cells": cells}, indent=1) + "\n")
    write_doc(summary, meta, args.doc)
    print(f"done: {len(cells)}/{len(todo)} runs → {summary_path}, {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
