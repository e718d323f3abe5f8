"""Check a multi-host run (scripts/multihost.sh): from the peers' JSON logs and the auditor's `verify --json`.

Passes when every peer saw rounds 1..R finalized, every peer's collect step got the other members' updates
by gossip (`N gossip, 0 ipfs`), and the auditor verified rounds 1..R with no finding. Prints one line per
round (time from the previous round's finalization, as seen by the first peer) and exits 1 on any failure.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_COLLECT = re.compile(r"^(\d+) commitments(?: \(read ahead\))?: (\d+) gossip, (\d+) ipfs, (\d+) invalid")


def _events(log: Path) -> list[dict]:
    events = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                events.append(json.loads(line))
            except ValueError:
                continue
    return events


def check(logs: list[Path], rounds: int, verify: Path | None) -> list[str]:
    """The problems found (empty = all good); prints the per-round timings on the way."""
    problems: list[str] = []
    finalized_at: dict[int, float] = {}
    started_at: float | None = None
    for log in logs:
        events = _events(log)
        name = log.parent.name
        done = {e["round"] for e in events if e.get("phase") == "finalized" and e.get("event") == "done"}
        missing = sorted(set(range(1, rounds + 1)) - done)
        if missing:
            problems.append(f"{name}: rounds {missing} not seen finalized")
        for e in events:
            if e.get("phase") == "collect" and e.get("event") == "done":
                m = _COLLECT.match(e.get("message", ""))
                if m is None:
                    problems.append(f"{name} r{e['round']}: unreadable collect line {e.get('message')!r}")
                    continue
                total, gossip, ipfs, invalid = map(int, m.groups())
                if gossip != total - 1 or ipfs or invalid:
                    problems.append(f"{name} r{e['round']}: {e['message']} (wanted {total - 1} gossip, 0 ipfs)")
            if e.get("phase") == "finalized" and e.get("event") == "done":
                finalized_at.setdefault(e["round"], e["ts"])
            if started_at is None or e["ts"] < started_at:
                started_at = e["ts"]
        warnings = [e.get("message", "") for e in events if e.get("phase") == "gossip" and e.get("level") == "warning"]
        if warnings:
            print(f"{name}: {len(warnings)} gossip warning(s), first: {warnings[0]}")
    previous = started_at
    for r in sorted(finalized_at):
        print(f"round {r}: finalized {finalized_at[r] - previous:.1f} s after "
              f"{'the first peer started' if r == min(finalized_at) else f'round {r - 1}'}")
        previous = finalized_at[r]
    if verify is not None:
        try:
            report = json.loads(verify.read_text())
        except (OSError, ValueError) as exc:
            problems.append(f"audit verify output unreadable: {exc}")
        else:
            checked = set(report.get("rounds_checked", []))
            if not report.get("ok") or report.get("findings"):
                problems.append(f"audit verify: {report.get('findings')}")
            if not set(range(1, rounds + 1)) <= checked:
                problems.append(f"audit verify checked rounds {sorted(checked)}, wanted 1..{rounds}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("logs", nargs="+", type=Path, help="the peers' `peer run --json` logs")
    parser.add_argument("--rounds", type=int, required=True)
    parser.add_argument("--verify", type=Path, help="`audit verify --json` output")
    args = parser.parse_args()
    problems = check(args.logs, args.rounds, args.verify)
    for problem in problems:
        print(f"FAIL {problem}")
    if not problems:
        print(f"ok: {len(args.logs)} peers, rounds 1..{args.rounds} finalized, updates by gossip, audit verified")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
