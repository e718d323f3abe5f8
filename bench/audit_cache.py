"""`fedledger audit rounds` on a 100-round, 20-peer ledger: first (uncached) and second (cached) run.

Builds the ledger on a fresh anvil with tests/helpers/ledger_history.py (blobs in memory: `audit rounds` needs the
chain only), then times the CLI as a user runs it (a fresh process each time). Writes bench/results/audit_cache.json.

    .venv/bin/python bench/audit_cache.py [--rounds 100] [--peers 20]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from devnet.anvil import dev_accounts, start_anvil  # noqa: E402
from helpers.ledger_history import make_history  # noqa: E402
from ledger_tools.blobstore import InMemoryBlobStore  # noqa: E402


def timed_cli(args: list[str], module: str = "fedledger.cli") -> tuple[float, str]:
    t = time.perf_counter()
    if module == "fedledger.cli":
        cmd = [sys.executable, "-m", module, *args]
    else:  # the audit sub-app alone, without the other areas the root CLI imports (torch, libp2p, …)
        cmd = [sys.executable, "-c", f"import sys; from {module} import app; sys.argv[0] = 'audit'; app()", *args[1:]]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return time.perf_counter() - t, out.stdout


def in_process(h, cache_dir: Path) -> float:
    from ledger_tools.audit import load_history

    t = time.perf_counter()
    history, _ = load_history(h.owner, cache_dir=cache_dir)
    json.dumps([len(r.commits) for r in history.rounds.values()])
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--peers", type=int, default=20)
    ns = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fedledger-bench-"))
    anvil = start_anvil(log_path=tmp / "anvil.log")
    try:
        t = time.perf_counter()
        h = make_history(anvil.rpc_url, InMemoryBlobStore(), dev_accounts()[0].private_key, n_members=ns.peers,
                         use_store=True, account_seed="bench")
        for _ in range(ns.rounds):
            h.run_round()
        build = time.perf_counter() - t
        blocks = h.owner.w3.eth.block_number
        args = ["audit", "--rpc", anvil.rpc_url, "--contract", h.address, "--cache-dir", str(tmp / "cache"),
                "rounds", "--json"]
        first, out = timed_cli(args)
        second, out2 = timed_cli(args)
        third, _ = timed_cli(args)
        sub_app, _ = timed_cli(args, module="fedledger.audit_cmd")
        load_cached = in_process(h, tmp / "cache")
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import fedledger.cli"], check=True)
        import_only = time.perf_counter() - t
        rounds = json.loads(out2)
        assert out == out2 and len(rounds) == ns.rounds + 1
        result = {
            "rounds": ns.rounds, "peers": ns.peers, "blocks": blocks,
            "events": sum(len(r["commits"]) + len(r["votes"]) for r in rounds),
            "build_ledger_s": round(build, 1), "audit_rounds_uncached_s": round(first, 2),
            "audit_rounds_cached_s": round(second, 2), "audit_rounds_cached_again_s": round(third, 2),
            "audit_subapp_process_cached_s": round(sub_app, 2),
            "load_history_in_process_cached_s": round(load_cached, 3),
            "root_cli_import_only_s": round(import_only, 2),
        }
        print(json.dumps(result, indent=1))
        (ROOT / "bench" / "results").mkdir(parents=True, exist_ok=True)
        (ROOT / "bench" / "results" / "audit_cache.json").write_text(json.dumps(result, indent=1) + "\n")
    finally:
        anvil.stop()


if __name__ == "__main__":
    main()
