"""Robustness bench: final test accuracy of a 20-peer federation under Byzantine attacks, per aggregation rule,
3 seeds per cell, and the share of the reward pool paid to the Byzantine peers.

Grid: settings {digits α=1.0, breast_cancer α=1.0, digits α=0.3} × Byzantine fraction × 12 attacks × rules ×
seeds. The clean (0 %) run of each (setting, rule, seed) is shared by every attack. Every cell is a ledger-free
`simulation.engine` run: the protocol's own canonical codec, exact aggregation and reward split
(`compute_round_outcome`), in-memory transport. Cells are appended to `<out>/<stem>.jsonl` as they finish, so a
run cut short still leaves its numbers (`--report-only` rebuilds the JSON, figures and doc from that file).

    nice -n 10 python -m bench.robustness              # → bench/results/robustness.{json,png}, docs/robustness.md
    python -m bench.robustness --quick                 # digits α=1.0, 0 % and 20 %, one seed
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.cells import read_cells, run_cells
from bench.robustness_report import RESULTS, Setting, write_all

ATTACKS = ("sign_flip", "gaussian", "scaled", "label_flip", "alie", "ipm",
           "min_max", "min_sum", "fang", "alie_opt", "ipm_opt", "mimic")
RULES = ("fedavg", "multi_krum", "trimmed_mean", "median", "centered_clipping", "nnm+trimmed_mean",
         "arc+nnm+trimmed_mean", "bucketing+nnm+trimmed_mean", "rescale+nnm+centered_clipping",
         "dedup+rescale+nnm+centered_clipping")
FRACTIONS = (0.0, 0.1, 0.2, 0.3)
SEEDS = (0, 1, 2)
PEERS = 20
CLEAN_F = 2  # f a federation of 20 declares when nobody attacks (10 %), so the clean row shows a rule's price

SETTINGS = (
    # The claim's settings. Digits at lr 0.1: clean FedAvg reaches ~94 % in 10 rounds, the regime it converges
    # to (~95 %); at lr 0.05 it is still climbing at round 10 (~91 %), where any slowdown costs points and
    # the claim would measure speed rather than robustness. That setting stays, as "digits a=1.0, lr 0.05".
    Setting("digits a=1.0", "digits", 1.0, rounds=10, local_epochs=2, batch_size=16, lr=0.1),
    Setting("breast_cancer a=1.0", "breast_cancer", 1.0, rounds=4, local_epochs=2, batch_size=16, lr=0.05),
    Setting("digits a=0.3", "digits", 0.3, rounds=10, local_epochs=2, batch_size=16, lr=0.1),
    Setting("digits a=1.0, lr 0.05", "digits", 1.0, rounds=10, local_epochs=2, batch_size=16, lr=0.05),
)


def _cell(args: tuple) -> dict:
    setting, fraction, attack, rule, seed = args
    import torch

    torch.set_num_threads(1)
    from simulation.config import SimConfig
    from simulation.engine import SimEngine

    byzantine = int(round(fraction * PEERS))
    cfg = SimConfig(
        task=setting.task, peers=PEERS, byzantine=byzantine, attack=attack if byzantine else "none",
        rule=rule, f=byzantine if byzantine else CLEAN_F, rounds=setting.rounds, alpha=setting.alpha,
        local_epochs=setting.local_epochs, batch_size=setting.batch_size, lr=setting.lr, seed=seed,
        batched_training=True,
    )
    started = time.perf_counter()
    result = SimEngine(cfg).run()
    paid_byz = sum(r.rewarded_byzantine_wei for r in result.rounds)
    paid = paid_byz + sum(r.rewarded_honest_wei for r in result.rounds)
    return {
        "setting": setting.name, "fraction": fraction, "attack": attack if byzantine else "none", "rule": rule,
        "seed": seed, "byzantine": byzantine, "f": result.config["effective_f"],
        "final_accuracy": result.final_accuracy,
        "accuracy_curve": [round(r.accuracy, 4) for r in result.rounds],
        "byzantine_reward_share": paid_byz / paid if paid else 0.0,
        "byzantine_rejected_last_round": result.rounds[-1].rejected_byzantine if result.rounds else 0,
        "honest_rejected_last_round": result.rounds[-1].rejected_honest if result.rounds else 0,
        "final_model_hash": result.final_model_hash,
        "seconds": round(time.perf_counter() - started, 2),
    }


def jobs(settings, fractions, attacks, rules, seeds, attacked_rules=None) -> list[tuple]:
    """Setting-major, then seed, so that a run cut short has whole settings with every seed. Clean cells for
    every rule of `rules`, attacked cells for `attacked_rules` (default: the same)."""
    attacked = rules if attacked_rules is None else attacked_rules
    out = []
    for s in settings:
        for seed in seeds:
            out += [(s, 0.0, "none", rule, seed) for rule in rules]
            out += [(s, fr, a, rule, seed) for fr in fractions if fr > 0 for a in attacks for rule in attacked]
    return out


def attacks_run(cells: list[dict]) -> list[str]:
    """The attacks the cells hold, the grid's in its own order first: the doc and figures iterate over this, so a
    run with `--attacks alie_noisy ...` must not be reported under the 12 default attacks."""
    seen = list(dict.fromkeys(c["attack"] for c in cells if c["attack"] != "none"))
    return [a for a in ATTACKS if a in seen] + [a for a in seen if a not in ATTACKS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="digits α=1.0, 0 %% and 20 %%, one seed")
    ap.add_argument("--fractions", type=float, nargs="+", default=list(FRACTIONS))
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--rules", nargs="+", default=list(RULES))
    ap.add_argument("--attacked-rules", nargs="+", default=None, help="rules run under attack (default: --rules)")
    ap.add_argument("--attacks", nargs="+", default=list(ATTACKS))
    ap.add_argument("--settings", nargs="+", default=[s.name for s in SETTINGS[:3]],
                    help="default: digits α=1.0 and α=0.3 (10 rounds, lr 0.1), breast cancer; also "
                         "'digits a=1.0, lr 0.05' (still climbing at round 10)")
    ap.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--label", default="", help="how this run differs from the full grid (printed in the doc)")
    ap.add_argument("--report-only", action="store_true", help="rebuild JSON/figures/doc from the .jsonl")
    ap.add_argument("--resume", action="store_true", help="keep the cells already in the .jsonl, run the rest")
    ap.add_argument("--no-doc", action="store_true", help="do not rewrite docs/robustness.md")
    args = ap.parse_args(argv)

    settings = tuple(s for s in SETTINGS if s.name in args.settings)
    fractions, seeds = tuple(args.fractions), tuple(args.seeds)
    if args.quick:
        settings, fractions, seeds = SETTINGS[:1], (0.0, 0.2), (0,)
    stem = "robustness_quick" if args.quick else "robustness"
    args.out.mkdir(parents=True, exist_ok=True)
    log = args.out / f"{stem}.jsonl"
    todo = jobs(settings, fractions, tuple(args.attacks), tuple(args.rules), seeds, args.attacked_rules)
    started = time.perf_counter()
    load_before = os.getloadavg()
    if not args.report_only:
        done = set()
        if args.resume and log.exists():
            done = {(c["setting"], c["fraction"], c["attack"], c["rule"], c["seed"])
                    for c in read_cells(log)}
        else:
            log.write_text("")
        run = [j for j in todo if (j[0].name, j[1], j[2], j[3], j[4]) not in done]
        print(f"{len(run)} runs on {args.workers} workers ({len(done)} already done)", flush=True)
        run_cells(_cell, run, args.workers, log,
                  lambda c: f"{c['setting']} {int(100 * c['fraction'])}% {c['attack']} {c['rule']} "
                            f"s{c['seed']}: {100 * c['final_accuracy']:.1f} ({c['seconds']} s)")
    cells = read_cells(log)
    from simulation import attacks

    meta = {"quick": args.quick, "planned_runs": len(todo), "runs": len(cells), "label": args.label,
            "wall_seconds": round(time.perf_counter() - started, 1), "workers": args.workers,
            "load_average_at_start": [round(x, 1) for x in load_before],
            "load_average_at_end": [round(x, 1) for x in os.getloadavg()],
            "seeds": list(seeds), "peers": PEERS, "clean_f": CLEAN_F, "fractions": list(fractions),
            "attacks": attacks_run(cells), "rules": [r for r in RULES if any(c["rule"] == r for c in cells)],
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            "settings": [s.__dict__ for s in SETTINGS if any(c["setting"] == s.name for c in cells)], "attack_strengths": asdict(attacks.STRENGTHS)}
    if args.report_only and (args.out / f"{stem}.json").exists():
        old = json.loads((args.out / f"{stem}.json").read_text())["meta"]
        meta.update({k: old[k] for k in ("wall_seconds", "load_average_at_start", "load_average_at_end") if k in old})
    write_all(cells, meta, args.out, stem, doc=not args.no_doc and not args.quick)
    print(f"done: {len(cells)}/{len(todo)} runs in {meta['wall_seconds']:.0f} s → {args.out / stem}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
