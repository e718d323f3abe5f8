"""Where a commit / vote transaction's wall time goes: every JSON-RPC request `FederationLedger._send` makes,
timed at the provider, plus the local signing, on a real anvil (mines on arrival) with a 10-member federation.

Why: at ~1M parameters the round is ~1 s and the ledger's two transactions are a large share of it. This
splits each into its requests (nonce, gas estimate, fee fields, eth_sendRawTransaction, receipt) so the fix
targets what dominates.

    python -m bench.tx_path [--peers 10] [--rounds 5]   → prints a table, bench/results/tx_path.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


class _Recorder:
    """Wraps the provider's raw HTTP call (`_make_request`; `make_request` is cached inside web3's middleware
    chain): (method, seconds) of every request."""

    def __init__(self, provider: Any) -> None:
        self.calls: list[tuple[str, float]] = []
        inner = provider._make_request

        def make_request(method: Any, request_data: bytes) -> bytes:
            t = time.perf_counter()
            try:
                return inner(method, request_data)
            finally:
                self.calls.append((str(method), time.perf_counter() - t))

        provider._make_request = make_request
        batch = provider.make_batch_request

        def make_batch_request(requests: Any) -> Any:
            t = time.perf_counter()
            try:
                return batch(requests)
            finally:
                self.calls.append(("batch[" + ",".join(m for m, _ in requests) + "]", time.perf_counter() - t))

        provider.make_batch_request = make_batch_request

    def take(self) -> list[tuple[str, float]]:
        out, self.calls = self.calls, []
        return out


def _profile(rec: _Recorder, send: Any, *args: Any) -> tuple[dict, Any]:
    rec.take()
    t = time.perf_counter()
    result = send(*args)
    total = time.perf_counter() - t
    calls = rec.take()
    by: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for m, s in calls:
        by[m] += s
        count[m] += 1
    return {"total": total, "rpc": dict(by), "count": dict(count), "local": total - sum(by.values())}, result


def run(peers: int, rounds: int) -> dict:
    from consensus.merkle import RewardTree
    from devnet.anvil import dev_accounts, extra_accounts, start_anvil
    from devnet.deploy import deploy_federation
    from ledger_tools.config import FederationConfig

    anvil = start_anvil()
    try:
        keys = dev_accounts()[1:] + extra_accounts(anvil.rpc_url, max(0, peers - 9), seed="tx_path")
        accounts = keys[:peers]
        config = FederationConfig.from_data({
            "members": [{"address": a.address, "enc_key": "0x" + bytes([i + 1] * 32).hex(), "weight": 1_000_000}
                        for i, a in enumerate(accounts)],
            "rule": "multi_krum", "f": max(1, peers // 5), "quorum_bps": 5000, "commit_period": 600,
            "vote_period": 600, "reward_per_round_wei": 10**18, "funding_wei": 100 * 10**18,
            "model_spec_hash": "0x" + "5e" * 32, "genesis_model_hash": "0x" + "9e" * 32,
            "genesis_model_cid": "bafkreigenesis", "alpha_bps": 1000})
        owner = deploy_federation(anvil.rpc_url, config, dev_accounts()[0].private_key)
        members = [owner.with_account(a.private_key) for a in accounts]
        rec = _Recorder(owner.w3.provider)
        commits, votes = [], []
        for r in range(1, rounds + 1):
            for i, m in enumerate(members):
                commits.append(_profile(rec, m.commit, r, bytes([i + 1]) * 32, f"bafkreiupdate{r}x{i}", 100 + i)[0])
            tree = RewardTree.build(r, [a.address for a in accounts], [10**17] * peers)
            for m in members:
                row, receipt = _profile(rec, m.vote, r, b"\xa1" * 32, "bafkreiagg", tree.root, "bafkreirewards", [])
                votes.append(row)
                if receipt.finalized:
                    break
    finally:
        anvil.stop()
    return {"commit": _summary(commits), "vote": _summary(votes), "peers": peers, "rounds": rounds,
            "load_avg": round(os.getloadavg()[0], 2)}


def _summary(rows: list[dict]) -> dict:
    methods = sorted({m for r in rows for m in r["rpc"]})
    return {"n": len(rows), "total_median": round(statistics.median(r["total"] for r in rows), 4),
            "local_median": round(statistics.median(r["local"] for r in rows), 4),
            "rpc_median": {m: round(statistics.median(r["rpc"].get(m, 0.0) for r in rows), 4) for m in methods},
            "rpc_count": {m: max(r["count"].get(m, 0) for r in rows) for m in methods}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--peers", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(RESULTS / "tx_path.json"))
    args = ap.parse_args(argv)
    load = round(os.getloadavg()[0], 2)
    doc = run(args.peers, args.rounds)
    doc["load_avg"] = [load, doc["load_avg"]]
    doc["command"] = "python -m bench.tx_path " + " ".join(argv if argv is not None else sys.argv[1:])
    for kind in ("commit", "vote"):
        s = doc[kind]
        print(f"{kind}: median {s['total_median'] * 1000:.1f} ms over {s['n']} txs; local (sign, encode, web3) "
              f"{s['local_median'] * 1000:.1f} ms")
        for m, v in s["rpc_median"].items():
            print(f"    {m:<32} x{s['rpc_count'][m]}  {v * 1000:7.1f} ms")
    print(f"load average {doc['load_avg']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(doc, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
