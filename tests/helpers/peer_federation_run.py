"""Run a whole local federation of peer processes and report accuracy per round and per-phase timings.

    python tests/helpers/peer_federation_run.py --peers 3 --rounds 10            # accuracy (digits, Dirichlet 0.5)
    python tests/helpers/peer_federation_run.py --peers 5 --rounds 2              # per-phase timings (round 2 = steady)

Starts its own anvil and IPFS node (stopped at the end; its temp dir is removed unless --workdir), bootstraps a
federation, runs `fedledger peer run --json` per peer, and prints a JSON summary on the last line.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/: `helpers.` imports

from devnet.anvil import start_anvil  # noqa: E402
from devnet.bootstrap import LOCAL_ROUND_PARAMS, create_local_federation  # noqa: E402
from devnet.ipfs import start_ipfs  # noqa: E402
from helpers.peer_proc import PeerProcess  # noqa: E402
from ledger_tools.chain import FederationLedger  # noqa: E402
from peer.tempdirs import owned_tempdir  # noqa: E402

PHASES = ("train", "seal", "ipfs", "gossip", "chain_commit", "collect", "aggregate", "ipfs_results", "chain_vote")


def run(peers: int, rounds: int, *, rule: str = "fedavg", f: int = 0, alpha: float = 0.5,
        commit_period: int = 90, vote_period: int = 30, workdir: Path | None = None) -> dict:
    root = Path(workdir) if workdir else owned_tempdir("fedledger-run-")  # a killed run's dir goes at the next start
    anvil = start_anvil(log_path=root / "anvil.log")
    ipfs = start_ipfs(repo_dir=root / "ipfs", offline=True)
    procs: list[PeerProcess] = []
    try:
        params = LOCAL_ROUND_PARAMS.replace(rule=rule, f=f, commit_period=commit_period, vote_period=vote_period)
        fed = create_local_federation(root / "fed", peers, rpc_url=anvil.rpc_url, ipfs_api=ipfs.api_url,
                                      params=params, alpha=alpha)
        started = time.monotonic()
        procs = [PeerProcess(p.config_path, "--max-rounds", str(rounds)).start() for p in fed.peers]
        codes = [p.wait(timeout=120 + rounds * (commit_period + vote_period)) for p in procs]
        wall = time.monotonic() - started
        chain = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
        finalized = {r: chain.finalization(r) is not None for r in range(1, rounds + 1)}
        records = [json.loads((p.state_dir / "node" / "state.json").read_text())["rounds"] for p in fed.peers]
        accuracy = {r: records[0].get(str(r), {}).get("accuracy") for r in range(1, rounds + 1)}
        timings: dict[int, dict[str, float]] = {}
        for r in range(1, rounds + 1):
            per_phase = {}
            for ph in PHASES:
                values = [rec[str(r)]["timings"][ph] for rec in records
                          if str(r) in rec and ph in rec[str(r)].get("timings", {})]
                if values:
                    per_phase[ph] = round(statistics.median(values), 3)
            timings[r] = per_phase
        round_wall = {}
        for r in range(1, rounds + 1):
            ends = [e["elapsed"] for p in procs for e in p.events
                    if e.get("round") == r and e.get("phase") == "round" and e.get("elapsed") is not None]
            if ends:
                round_wall[r] = round(max(ends), 2)
        return {"peers": peers, "rounds": rounds, "exit_codes": codes, "wall_seconds": round(wall, 1),
                "finalized": finalized, "accuracy": accuracy, "median_phase_seconds": timings,
                "round_seconds": round_wall, "root": str(workdir) if workdir else None}
    finally:
        for p in procs:
            p.kill()
        ipfs.stop()
        anvil.stop()
        if workdir is None:  # GBs of IPFS blobs and peer state: --workdir keeps them
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", type=int, default=3)
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--rule", default="fedavg")
    ap.add_argument("--f", type=int, default=0)
    ap.add_argument("--alpha", type=float, default=0.5)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    summary = run(args.peers, args.rounds, rule=args.rule, f=args.f, alpha=args.alpha, workdir=args.workdir)
    for r in range(1, args.rounds + 1):
        print(f"round {r:2d}: finalized={summary['finalized'][r]} accuracy={summary['accuracy'][r]} "
              f"wall={summary['round_seconds'].get(r)}s phases={summary['median_phase_seconds'][r]}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
