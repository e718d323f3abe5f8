"""One round of a local federation of real peer processes at a large model size, with each peer's peak RSS.

    python tests/helpers/large_round_run.py --peers 10 --task digits-11m

Starts its own anvil and IPFS node, bootstraps a Multi-Krum federation (f = n // 5) on the task, runs
`fedledger peer run --json --max-rounds 1` per peer (training, encode, seal, IPFS, gossip envelope + bulk
stream, commit, collect, unseal, exact aggregation, vote), samples every peer process's kernel high-water
mark (VmHWM) until it exits, and prints a JSON summary on the last line: finalized, round wall time, median
per-phase seconds, where each peer's updates came from, peak RSS per peer.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import threading
import time
from pathlib import Path

# tests/ last, for `helpers.` imports: tests/consensus must not shadow the consensus package
sys.path.append(str(Path(__file__).resolve().parents[1]))

from devnet.anvil import start_anvil  # noqa: E402
from devnet.bootstrap import LOCAL_ROUND_PARAMS, create_local_federation  # noqa: E402
from devnet.ipfs import start_ipfs  # noqa: E402
from helpers.peer_proc import PeerProcess  # noqa: E402
from ledger_tools.chain import FederationLedger  # noqa: E402
from peer.tempdirs import owned_tempdir  # noqa: E402

PHASES = ("train", "seal", "ipfs", "gossip", "chain_commit", "collect", "aggregate", "ipfs_results", "chain_vote")


def _hwm(pid: int) -> int:
    """VmHWM of `pid` and its descendants' maximum (the CLI may run the node in a child), bytes; 0 if gone."""
    best = 0
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                best = int(line.split()[1]) * 1024
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            best = max(best, _hwm(int(child)))
    except (OSError, ValueError):
        pass
    return best


def run(peers: int, task: str, *, commit_period: int, vote_period: int, workdir: Path | None) -> dict:
    root = Path(workdir) if workdir else owned_tempdir("fedledger-large-")  # a killed run's dir goes at the next start
    anvil = start_anvil(log_path=root / "anvil.log")
    ipfs = start_ipfs(repo_dir=root / "ipfs", offline=True)
    procs: list[PeerProcess] = []
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for i, p in enumerate(procs):
                if p.proc is not None and p.proc.poll() is None:
                    peaks[i] = max(peaks.get(i, 0), _hwm(p.proc.pid))
            time.sleep(0.5)

    try:
        params = LOCAL_ROUND_PARAMS.replace(rule="multi_krum", f=max(1, peers // 5), commit_period=commit_period,
                                            vote_period=vote_period)
        fed = create_local_federation(root / "fed", peers, rpc_url=anvil.rpc_url, ipfs_api=ipfs.api_url,
                                      task=task, params=params, alpha=1.0)
        started = time.monotonic()
        procs.extend(PeerProcess(p.config_path, "--max-rounds", "1").start() for p in fed.peers)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        codes = [p.wait(timeout=300 + commit_period + vote_period) for p in procs]
        done.set()
        sampler.join(5)
        wall = time.monotonic() - started
        chain = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
        records = [json.loads((p.state_dir / "node" / "state.json").read_text())["rounds"].get("1", {})
                   for p in fed.peers]
        phases = {ph: round(statistics.median(v), 3) for ph in PHASES
                  if (v := [rec["timings"][ph] for rec in records if ph in rec.get("timings", {})])}
        collect = [e.get("message") for p in procs for e in p.events if e.get("phase") == "collect"]
        ends = [e["elapsed"] for p in procs for e in p.events
                if e.get("round") == 1 and e.get("phase") == "round" and e.get("elapsed") is not None]
        return {"peers": peers, "task": task, "exit_codes": codes, "finalized": chain.finalization(1) is not None,
                "wall_seconds": round(wall, 1), "round_seconds": round(max(ends), 2) if ends else None,
                "median_phase_seconds": phases, "collect": collect,
                "peak_rss_per_peer_GiB": [round(peaks.get(i, 0) / 2**30, 3) for i in range(len(procs))],
                "load_avg": round(os.getloadavg()[0], 2), "root": str(workdir) if workdir else None}
    finally:
        done.set()
        for p in procs:
            p.kill()
        ipfs.stop()
        anvil.stop()
        if workdir is None:  # GBs of IPFS blobs and peer state: --workdir keeps them
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--peers", type=int, default=10)
    ap.add_argument("--task", default="digits-11m")
    ap.add_argument("--commit-period", type=int, default=900)
    ap.add_argument("--vote-period", type=int, default=600)
    ap.add_argument("--workdir", type=Path)
    args = ap.parse_args()
    print(json.dumps(run(args.peers, args.task, commit_period=args.commit_period, vote_period=args.vote_period,
                         workdir=args.workdir)))


if __name__ == "__main__":
    main()
