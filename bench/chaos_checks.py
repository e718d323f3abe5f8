"""The four end checks of a chaos run, read from the chain, IPFS and the peers' state files after the run.

1. audit: `fedledger audit verify` (the auditor's CLI, from the host) passes and covers every finalized round.
2. once:  each member has at most one commitment and at most one vote per round on chain.
3. state: no peer's state file claims what the chain does not hold: a recorded commit/vote transaction is the
          member's commitment/vote of that round on chain, a round recorded finalized is finalized on chain with
          the digest the peer computed, a round recorded failed is failed on chain. (A record left behind by a
          killed peer, e.g. "committed" for a round that then finalized, is stale, not a contradiction: counted
          apart.)
4. funds: every member claims its rewards (`fedledger rewards claim`); then, past the claim window (anvil's
          clock moved forward), every round with a remainder is swept. No wei lost:
          funded = claimed + swept + never-allocated pool, claimed + swept = the pools of the finalized rounds,
          nothing stays reserved, and the contract's balance = funded - claimed.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from devnet.anvil import dev_accounts, increase_time, mine
from devnet.bootstrap import LocalFederation
from ledger_tools.chain import FederationLedger, LedgerError

ROOT = Path(__file__).resolve().parents[1]
ZERO_ROOT = b"\0" * 32


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedledger.cli", *args], capture_output=True, text=True, cwd=ROOT,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def _endpoints(fed: LocalFederation, cache: Path) -> list[str]:
    return ["--rpc", fed.rpc_url, "--contract", fed.contract, "--ipfs", fed.ipfs_api, "--cache-dir", str(cache)]


def check_audit(fed: LocalFederation, workdir: Path, finalized: list[int]) -> dict[str, Any]:
    out = _cli("audit", *_endpoints(fed, workdir / "audit-cache"), "verify", "--state-dir",
               str(fed.auditors[0].state_dir), "--password-file", str(fed.password_file), "--json", timeout=900)
    try:
        doc = json.loads(out.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        return {"ok": False, "exit_code": out.returncode, "error": (out.stderr or out.stdout).strip()[-800:]}
    verified = sorted(r["round"] for r in doc["rounds"] if r["status"] == "finalized" and r["verified"])
    missing = sorted(set(finalized) - set(verified))
    return {"ok": bool(doc["ok"]) and out.returncode == 0 and not missing, "exit_code": out.returncode,
            "rounds_verified": verified, "finalized_not_verified": missing,
            "mismatches": [f for f in doc["findings"] if f.get("severity") == "mismatch"][:10]}


def check_once(ledger: FederationLedger, last_round: int) -> dict[str, Any]:
    doubles = []
    for r in range(1, last_round + 1):
        for what, items in (("commit", ledger.commitments(r)), ("vote", ledger.votes(r))):
            for member, n in Counter(x.member.lower() for x in items).items():
                if n > 1:
                    doubles.append({"round": r, "member": member, "kind": what, "count": n})
    return {"ok": not doubles, "doubles": doubles}


def check_state(ledger: FederationLedger, fed: LocalFederation) -> dict[str, Any]:
    contradictions: list[dict[str, Any]] = []
    stale = 0
    failed = set(ledger.failed_rounds())
    for p in fed.peers:
        path = p.state_dir / "node" / "state.json"
        try:
            rounds = json.loads(path.read_text())["rounds"]
        except (OSError, ValueError, KeyError) as exc:
            contradictions.append({"peer": p.name, "error": f"state file unreadable: {exc}"})
            continue
        for key, rec in rounds.items():
            r = int(key)

            def bad(why: str, r: int = r, name: str = p.name) -> None:
                contradictions.append({"peer": name, "round": r, "why": why})

            mine_c = {c.tx_hash.lower() for c in ledger.commitments(r) if c.member.lower() == p.address.lower()}
            mine_v = {v.tx_hash.lower() for v in ledger.votes(r) if v.member.lower() == p.address.lower()}
            # a transaction recorded "pending" (not yet confirmations deep) is not a claim; any other is
            commit_tx = rec.get("commit_tx") if rec.get("commit_status") != "pending" else None
            if commit_tx and commit_tx.lower() not in mine_c:
                bad(f"records commit {rec['commit_tx'][:12]}… that is not its commitment on chain")
            vote_tx = rec.get("vote_tx") if rec.get("vote_status") != "pending" else None
            if vote_tx and vote_tx.lower() not in mine_v:
                bad(f"records vote {rec['vote_tx'][:12]}… that is not its vote on chain")
            fin = ledger.finalization(r)
            if rec.get("phase") == "finalized":
                if fin is None:
                    bad("recorded finalized, not finalized on chain")
                elif rec.get("digest") and rec["digest"].lower().removeprefix("0x") != fin.digest.hex():
                    bad("finalized with another digest than the chain's")
            elif rec.get("phase") == "failed" and r not in failed:
                bad("recorded failed, not failed on chain")
            elif fin is not None or r in failed:
                stale += 1
    return {"ok": not contradictions, "contradictions": contradictions, "stale_records": stale}


def check_funds(ledger: FederationLedger, fed: LocalFederation, workdir: Path,
                say: Callable[[str], None]) -> dict[str, Any]:
    claim_errors = []
    for p in fed.peers:
        out = _cli("rewards", *_endpoints(fed, workdir / f"claim-cache-{p.index}"), "claim", "--state-dir",
                   str(p.state_dir), "--password-file", str(fed.password_file))
        if out.returncode != 0:
            claim_errors.append({"peer": p.name, "error": (out.stderr or out.stdout).strip()[-400:]})
    claimable_after_claims = ledger.reserved()
    fins = ledger.finalizations()
    sweeper = ledger.with_account(dev_accounts()[9].private_key)
    if claimable_after_claims:
        increase_time(fed.rpc_url, ledger.claim_window() + 3600)
        mine(fed.rpc_url)
        for fin in fins:
            try:
                sweeper.sweep(fin.round)
            except LedgerError:
                pass  # nothing to sweep in that round
    funded = ledger.funded_wei()
    claimed = sum(c.total_wei for c in ledger.claims())
    swept = sum(s.amount_wei for s in ledger.sweeps())
    pools = sum(f.pool_wei for f in fins if f.rewards_root != ZERO_ROOT)
    balance, reserved = ledger.balance(), ledger.reserved()
    unallocated = funded - pools
    doc = {"funded_wei": funded, "claimed_wei": claimed, "claimable_after_claims_wei": claimable_after_claims,
           "swept_wei": swept, "finalized_pools_wei": pools, "unallocated_wei": unallocated,
           "balance_wei": balance, "reserved_wei": reserved, "claim_errors": claim_errors}
    doc["ok"] = (not claim_errors and claimed + swept == pools and reserved == 0 and balance == funded - claimed
                 and funded == claimed + swept + unallocated)
    say(f"funds: funded {funded / 1e18:.6f} ETH = claimed {claimed / 1e18:.6f} + swept {swept / 1e18:.6f} + "
        f"unallocated {unallocated / 1e18:.6f}; reserved {reserved}; " + ("ok" if doc["ok"] else "MISMATCH"))
    return doc


def run_checks(fed: LocalFederation, workdir: Path, rounds: int, say: Callable[[str], None] = print) -> dict[str, Any]:
    ledger = FederationLedger(fed.rpc_url, fed.contract, deploy_block=fed.deploy_block)
    last = ledger.current_round() - 1
    finalized = [f.round for f in ledger.finalizations()]
    failed = sorted(ledger.failed_rounds())
    checks = {"audit": check_audit(fed, workdir, finalized), "once": check_once(ledger, last),
              "state": check_state(ledger, fed)}
    checks["funds"] = check_funds(ledger, fed, workdir, say)
    for name, res in checks.items():
        say(f"check {name}: {'ok' if res['ok'] else 'FAILED'}")
    return {"rounds_settled": last, "rounds_finalized": finalized, "rounds_failed": failed,
            "rounds_wanted": rounds, "checks": checks, "all_ok": all(c["ok"] for c in checks.values())}
