"""Fault-injection run: a federation across network namespaces under a seeded fault schedule.

    sudo .venv/bin/python -m bench.chaos --rounds 20 --seed 1

Three institutions (one namespace each) and a chain/IPFS host run `--rounds` rounds of `fedledger peer run`
while the schedule (bench/chaos_faults.py: peer kill -9 + restart, chain and IPFS kill -9 + restart on the same
port, link down, degraded link, full disk, skewed clock) plays one fault at a time. At the end: `audit verify`,
at most one commit and one vote per member and round, peers' state files vs the chain, and every wei accounted
for after everyone claimed (bench/chaos_checks.py). Writes bench/results/chaos.json and prints the table.
Namespaces, processes and mounts are removed whatever happens. Needs root (network namespaces, tmpfs).
"""
from __future__ import annotations

import argparse
import json
import platform
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chaos_faults import FULL_SCHEDULE, make_schedule
from bench.chaos_net import NetnsUnavailable, probe
from bench.chaos_run import run_chaos
from devnet.bootstrap import LOCAL_ROUND_PARAMS

RESULTS = Path(__file__).resolve().parent / "results" / "chaos.json"
DOC = Path(__file__).resolve().parents[1] / "docs" / "reliability.md"
BEGIN, END = "<!-- chaos-table:begin -->", "<!-- chaos-table:end -->"


def table(results: dict[str, Any]) -> str:
    """The faults table and the summary lines (markdown)."""
    lines = ["| # | fault | round | injected at | held | lifted → recovered | recovered by |",
             "|---|---|---|---|---|---|---|"]
    for i, f in enumerate(results["faults"], 1):
        res = f["result"]
        who = f" peer{f['target']}" if f["target"] is not None else ""
        what = f"{f['kind']}{who}" + (f" {f['magnitude']:+.0f} s" if f["kind"] == "clock_skew" else "")
        if f["kind"] == "chain_kill":
            what += (f" ({f['trigger'].replace('_', ' ')}; {res.get('blocks_lost', '?')} block(s) lost, "
                     f"{res.get('txs_vanished_resent', 0)} tx re-sent)")
        rec = f"{res['recovery_s']:.1f} s" if res.get("recovery_s") is not None else "**not recovered**"
        if res.get("skipped"):
            lines.append(f"| {i} | {what} | – | – | – | skipped: {res['skipped']} | |")
            continue
        lines.append(f"| {i} | {what} | {res.get('round')} | {res.get('injected_at', 0):.0f} s | "
                     f"{f['duration']:.0f} s | {rec} | {res.get('recovered_by', '')} |")
    c = results["checks"]
    fin, failed = results["rounds_finalized"], results["rounds_failed"]
    lines += ["",
              f"- rounds: {results['rounds_settled']} settled, **{len(fin)} finalized**, {len(failed)} failed"
              f"{' ' + str(failed) if failed else ''}; wall {results['wall_seconds']:.0f} s; "
              f"peer restarts by the supervisor (process exited by itself): {len(results['restarts'])}",
              f"- audit verify: {'**pass**' if c['audit']['ok'] else '**FAIL**'} "
              f"({len(c['audit'].get('rounds_verified', []))} finalized rounds verified, "
              f"{len(c['audit'].get('mismatches', []))} mismatches)",
              f"- at most one commit and one vote per member and round: "
              f"{'**pass**' if c['once']['ok'] else '**FAIL** ' + json.dumps(c['once']['doubles'])}",
              f"- peers' state files vs chain: {'**pass**' if c['state']['ok'] else '**FAIL**'} "
              f"({len(c['state']['contradictions'])} contradictions, {c['state']['stale_records']} stale records)",
              f"- funds: {'**pass**' if c['funds']['ok'] else '**FAIL**'}: funded "
              f"{c['funds']['funded_wei']} wei = claimed {c['funds']['claimed_wei']} + swept "
              f"{c['funds']['swept_wei']} + never allocated {c['funds']['unallocated_wei']}; reserved after sweep "
              f"{c['funds']['reserved_wei']}"]
    return "\n".join(lines)


def write_doc(doc: dict[str, Any], path: Path) -> None:
    """Replace the text between the chaos-table markers of `path` (the rest belongs to other sections)."""
    fuzz = json.loads((RESULTS.parent / "fuzz.json").read_text()) if (RESULTS.parent / "fuzz.json").exists() else None
    head = (f"`{doc['command']}` ({doc['peers']} institutions, commit/vote periods {doc['commit_period']}/"
            f"{doc['vote_period']} s, rounds paced {doc.get('pace', 0):.0f} s; {doc['machine']}; started "
            f"{doc['started']}{'; code ' + doc['code'] if doc.get('code') else ''}). Raw results: "
            "`bench/results/chaos.json`.")
    tail = ("" if fuzz is None else f"\n\nFuzzing, for the same issue (`bench/results/fuzz.json`, section above): "
            f"{fuzz['total_cases']:,} cases, {fuzz['total_findings']} findings.")
    text = path.read_text()
    before, rest = text.split(BEGIN, 1)
    path.write_text(before + BEGIN + "\n\n" + head + "\n\n" + table(doc) + tail + "\n\n" + END
                    + rest.split(END, 1)[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--peers", type=int, default=3)
    ap.add_argument("--commit-period", type=int, default=60)
    ap.add_argument("--vote-period", type=int, default=30)
    ap.add_argument("--pace", type=float, default=20.0, help="s each round waits before peers commit")
    ap.add_argument("--kinds", default=",".join(FULL_SCHEDULE), help="comma-separated fault kinds (repeats allowed)")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--prefix", help="namespace/bridge name prefix (default flc<pid>)")
    ap.add_argument("--subnet", default="10.241.0")
    ap.add_argument("--code", default="", help="what code ran (e.g. the commit of a clean export), for the record")
    ap.add_argument("--report-only", action="store_true", help="write the table of --out into --doc; no run")
    ap.add_argument("--doc", type=Path, default=DOC)
    args = ap.parse_args(argv)
    if args.report_only:
        write_doc(json.loads(args.out.read_text()), args.doc)
        return 0
    try:
        probe()
    except NetnsUnavailable as exc:
        print(f"chaos: cannot run: {exc}", file=sys.stderr)
        return 77
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))   # `kill`: tear down like Ctrl-C does
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="fedledger-chaos-"))
    faults = make_schedule(args.seed, args.rounds, args.peers, tuple(args.kinds.split(",")))
    params = LOCAL_ROUND_PARAMS.replace(rule="fedavg", commit_period=args.commit_period, vote_period=args.vote_period)
    started = time.time()

    def say(line: str) -> None:
        print(f"[chaos {time.strftime('%H:%M:%S')}] {line}", flush=True)

    results = run_chaos(workdir, rounds=args.rounds, peers=args.peers, faults=faults, params=params,
                        prefix=args.prefix, subnet=args.subnet, seed=args.seed, pace=args.pace, say=say)
    plumbing = {"--out", "--workdir", "--code", "--prefix", "--subnet", "--doc"}   # where, not what
    given = list(sys.argv[1:] if argv is None else argv)
    kept = [a for i, a in enumerate(given) if a not in plumbing and (i == 0 or given[i - 1] not in plumbing)]
    cmd = " ".join(["python -m bench.chaos", *kept])
    doc = {"command": cmd, "seed": args.seed, "rounds": args.rounds, "peers": args.peers,
           "commit_period": args.commit_period, "vote_period": args.vote_period, "pace": args.pace,
           "machine": f"{platform.machine()}, Python {platform.python_version()}", "code": args.code,
           "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)), "workdir": str(workdir), **results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(table(doc))
    return 0 if results["all_ok"] and all(f["result"].get("recovery_s") is not None
                                         for f in results["faults"] if not f["result"].get("skipped")) else 1


if __name__ == "__main__":
    sys.exit(main())
