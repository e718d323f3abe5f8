"""Start anvil or an IPFS node *inside* a network namespace and leave it running (one JSON line: its pid).

    ip netns exec NS python -m bench.chaos_service anvil --host IP --port 8545 --state FILE --log FILE
    ip netns exec NS python -m bench.chaos_service ipfs --host IP --port 5001 --repo DIR

The chaos harness runs this under `ip netns exec` so the devnet's own launchers (`start_anvil`, `start_ipfs`:
free-port checks, readiness waits, stale IPFS lock removal) run in the machine's namespace; the service is
started in its own session and outlives this short-lived launcher, so the harness can kill -9 it by pid.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from devnet.anvil import start_anvil
from devnet.ipfs import start_ipfs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("service", choices=("anvil", "ipfs"))
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--state", type=Path, help="anvil: state file (loaded if it exists, dumped every second)")
    ap.add_argument("--log", type=Path, help="anvil: log file")
    ap.add_argument("--repo", type=Path, help="ipfs: repo directory")
    args = ap.parse_args()
    if args.service == "anvil":
        anvil = start_anvil(port=args.port, host=args.host, state_file=args.state, log_path=args.log, timeout=60)
        print(json.dumps({"pid": anvil.pid, "url": anvil.rpc_url}), flush=True)
    else:
        node = start_ipfs(api_port=args.port, repo_dir=args.repo, offline=True, host=args.host, detach=True,
                          startup_timeout=90)
        print(json.dumps({"pid": node.pid, "url": node.api_url}), flush=True)


if __name__ == "__main__":
    main()
