"""Long fuzz run of every decoder of network/disk bytes: `python -m bench.fuzz [--cases N] [--seed S]`.

Mutated valid samples (byte-level and, for JSON/TOML, field-level) plus random bytes and a fixed list of hostile
inputs, `--cases` in total (default 110,000) spread evenly over the targets of `bench.fuzz_targets`. A case fails
when a decoder raises anything but its documented error types. Writes bench/results/fuzz.json and the results
table between the fuzz markers of docs/reliability.md; exits 1 on any finding.
"""
from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

from bench.fuzz_targets import Finding, check_seeds, hostile_inputs, mutant, run_case, targets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "fuzz.json"
DOC = ROOT / "docs" / "reliability.md"
BEGIN, END = "<!-- fuzz-table:begin (written by python -m bench.fuzz) -->", "<!-- fuzz-table:end -->"
DEFAULT_CASES = 110_000


def fuzz(cases: int, seed: int, progress=print) -> dict:
    """Run `cases` cases over all targets; the results document (also what the table is made of)."""
    problems = check_seeds()
    if problems:
        raise SystemExit("samples refused:\n" + "\n".join(problems))
    all_targets = targets()
    per_target = -(-cases // len(all_targets))
    rows, findings = [], []
    started = time.time()
    for i, target in enumerate(all_targets):
        rng = random.Random(f"{seed}/{target.name}")
        t0 = time.perf_counter()
        found: list[Finding] = []
        specials = hostile_inputs(target)
        for n in range(per_target):
            data = specials[n] if n < len(specials) else mutant(rng, target)
            finding = run_case(target, data)
            if finding is not None:
                found.append(finding)
        seconds = time.perf_counter() - t0
        kinds = sorted({f.error.split(":")[0] for f in found})
        rows.append({"target": target.name, "decoder": target.decoder, "cases": per_target,
                     "allowed": [e.__name__ for e in target.allowed], "findings": len(found), "finding_types": kinds,
                     "seconds": round(seconds, 2)})
        findings += [{"target": f.target, "error": f.error, "input_hex": f.data[:256].hex()} for f in found[:5]]
        progress(f"[{i + 1}/{len(all_targets)}] {target.name}: {per_target} cases, {len(found)} findings, "
                 f"{seconds:.1f} s")
    return {
        "command": f"python -m bench.fuzz --cases {cases} --seed {seed}",
        "seed": seed,
        "total_cases": per_target * len(all_targets),
        "total_findings": sum(r["findings"] for r in rows),
        "wall_seconds": round(time.time() - started, 1),
        "machine": f"{platform.machine()}, Python {platform.python_version()}",
        "rows": rows,
        "findings": findings,
    }


def table(doc: dict) -> str:
    lines = [BEGIN, "",
             f"`{doc['command']}` — {doc['total_cases']:,} cases, {doc['total_findings']} findings, "
             f"{doc['wall_seconds']:.0f} s ({doc['machine']}); raw results in `bench/results/fuzz.json`.", "",
             "| decoder (bytes from) | function | cases | may raise | result |",
             "|---|---|---:|---|---|"]
    for r in doc["rows"]:
        result = "pass" if not r["findings"] else f"**{r['findings']} findings** ({', '.join(r['finding_types'])})"
        lines.append(f"| {r['target']} | `{r['decoder']}` | {r['cases']:,} | {', '.join(r['allowed'])} | {result} |")
    return "\n".join(lines + ["", END])


def write_table(doc: dict, path: Path = DOC) -> None:
    """Replace the text between the markers (the rest of the document belongs to its other sections)."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + table(doc) + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + table(doc) + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=DEFAULT_CASES, help="total cases over all decoders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only; keep results and docs untouched")
    args = parser.parse_args(argv)
    doc = fuzz(args.cases, args.seed)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(doc, indent=1) + "\n")
        write_table(doc)
    print(table(doc))
    for f in doc["findings"]:
        print(f"FINDING {f['target']}: {f['error']}", file=sys.stderr)
    return 1 if doc["total_findings"] else 0


if __name__ == "__main__":
    sys.exit(main())
