"""`fedledger demo` end to end: real devnet, real IPFS node, one process per peer, audit, claims."""
from __future__ import annotations

import json
import os
import subprocess
import sys


def test_demo_three_peers_two_rounds(tmp_path) -> None:
    workdir = tmp_path / "demo"
    proc = subprocess.run(
        [sys.executable, "-m", "fedledger.cli", "demo", "--peers", "3", "--rounds", "2", "--no-live",
         "--workdir", str(workdir), "--timeout", "400"],
        capture_output=True, text=True, timeout=560, env={**os.environ, "COLUMNS": "120"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    summary = json.loads((workdir / "demo-summary.json").read_text())
    assert summary["ok"] and summary["audit_ok"] and summary["claims_ok"]
    assert summary["rounds_finalized"] == [1, 2]
    assert (workdir / "report.html").stat().st_size > 0
    # nothing the demo started is left running: no process still uses its federation directory
    leftovers = subprocess.run(["pgrep", "-f", str(workdir)], capture_output=True, text=True).stdout.split()
    assert leftovers == []


def test_demo_rejects_rule_that_cannot_tolerate_f(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "fedledger.cli", "demo", "--peers", "3", "--rule", "krum", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2  # bad input (README, "CLI errors and exit codes")
    assert "cannot tolerate" in proc.stderr + proc.stdout
