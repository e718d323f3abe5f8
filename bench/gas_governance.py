"""Gas of governance, stake and slashing (contracts/FederationGovernor.sol) on a real anvil devnet.

    .venv/bin/python -m bench.gas_governance     # writes bench/results/gas_governance.json, prints a table

Per n (bootstrap members, rule multi_krum, f = max(1, n // 10)): a candidate stakes; a member proposes its
admission; members vote for it until a majority of the total weight (every vote measured; the first vote of a
proposal is the one that pays for the proposal's cold tally slot); anyone executes it after the delay; the
newcomer equivocates and a third party slashes it from two envelopes whose wrapped keys are the size a real seal
header has for n + 1 recipients (68 + 144 bytes each) and, for comparison, with empty wrapped keys: a slash
carries only each envelope's signed header (`EnvelopeProof`), so both cost the same; a third newcomer commits one
update and gossips another, and is slashed for the mismatch; a bootstrap member stakes, leaves (before the
slashes) and withdraws after the delay. Every slashed member is removed (slash_bps = 100 %). A member proposes new
ledger round parameters (reward, commit period), a majority votes, anyone executes; every member commits round 1 and
the members vote until it finalizes: that finalizing vote opens round 2 under the new parameters (the one round
operation a change costs more: reading and writing the pending set).
docs/governance.md quotes the numbers.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
from pathlib import Path
from typing import Any

from eth_account import Account

from devnet.anvil import extra_accounts, increase_time, start_anvil
from devnet.deploy import deploy_governed_federation
from ledger_tools.chain.governance import GovParams
from ledger_tools.chain.signed_tx import commit_tx
from ledger_tools.config import FederationConfig
from peer.net.envelope import Envelope
from peer.net.envelope_proof import EnvelopeProof

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "gas_governance.json"
TARGETS = {"vote_avg": 60_000, "slash_max": 120_000}
ETH = 10**18
GOV = GovParams(min_stake=ETH, voting_period=600, execution_delay=60, execution_window=3600, withdraw_delay=600)
CID = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"


def _envelope(key: str, ledger: str, chain_id: int, update: bytes, keys_len: int, round_: int = 1) -> Envelope:
    return Envelope.create(Account.from_key(key), federation=ledger, chain_id=chain_id, round=round_,
                           update_hash=update,
                           cid=CID, wrapped_keys=bytes(range(256)) * (keys_len // 256) + b"\x5a" * (keys_len % 256),
                           blob_sha256=b"\x33" * 32, blob_size=10**6)


def measure(n: int) -> dict[str, Any]:
    with start_anvil() as anvil:
        deployer, *people = extra_accounts(anvil.rpc_url, n + 5, seed=f"bench-gov-{n}", wei=10**22)
        members, (cand, second, third, reporter) = people[:n], people[n:n + 4]
        config = FederationConfig.from_data({
            "members": [{"address": m.address, "enc_key": "0x" + "ab" * 32} for m in members],
            "rule": "multi_krum", "f": max(1, n // 10), "quorum_bps": 5000, "commit_period": 3600,
            "vote_period": 3600, "reward_per_round_wei": ETH, "funding_wei": 10 * ETH,
            "model_spec_hash": "0x" + "01" * 32, "genesis_model_hash": "0x" + "02" * 32,
            "genesis_model_cid": "bafkreigenesis",
        })
        d = deploy_governed_federation(anvil.rpc_url, config, deployer.private_key, GOV)
        gov = [d.governor.with_account(m.private_key) for m in members]
        out: dict[str, Any] = {"n": n}
        out["stake"] = d.governor.with_account(cand.private_key).stake(2 * ETH).gas_used
        d.governor.with_account(second.private_key).stake(2 * ETH)
        d.governor.with_account(third.private_key).stake(2 * ETH)
        proposals = []
        for who in (cand, second, third):
            r = gov[0].propose_admit(who.address, b"\x42" * 32, 1_000_000, 2 * ETH)
            proposals.append(r.proposal_id)
            out.setdefault("propose_admit", r.gas_used)
        votes = [g.vote(pid, True).gas_used for pid in proposals for g in gov[: n // 2 + 1]]
        out["vote"] = {"avg": round(statistics.fmean(votes)), "min": min(votes), "max": max(votes),
                       "count": len(votes)}
        increase_time(anvil.rpc_url, GOV.voting_period + GOV.execution_delay + 1)
        out["execute_admit"] = d.governor.with_account(reporter.private_key).execute(proposals[0]).gas_used
        for pid in proposals[1:]:
            d.governor.with_account(reporter.private_key).execute(pid)
        out.update(_round_params(anvil.rpc_url, d, gov))
        leaver = d.governor.with_account(members[-1].private_key)
        leaver.stake(ETH)
        out["leave"] = leaver.leave().gas_used  # before the slashes: the rule keeps enough members
        chain_id = d.ledger.chain_id
        real = 68 + 144 * (n + 1)
        slasher = d.governor.with_account(reporter.private_key)
        for label, who, keys_len in (("slash", cand, real), ("slash_empty_keys", second, 0)):
            a = _envelope(who.private_key, d.ledger.address, chain_id, b"\x01" * 32, keys_len)
            b = _envelope(who.private_key, d.ledger.address, chain_id, b"\x02" * 32, keys_len)
            r = slasher.slash_equivocation(EnvelopeProof.of(a).as_abi(), EnvelopeProof.of(b).as_abi())
            out[label] = {"gas": r.gas_used, "envelope_bytes": len(a.to_bytes()), "removed": r.removed}
        now = d.ledger.current_round()
        d.ledger.with_account(third.private_key).commit(now, b"\x01" * 32, CID, 100)
        gossiped = _envelope(third.private_key, d.ledger.address, chain_id, b"\x02" * 32, real, now)
        r = slasher.slash_commit_mismatch(EnvelopeProof.of(gossiped).as_abi(),
                                          commit_tx(d.ledger, third.address, now))
        out["slash_commit_mismatch"] = {"gas": r.gas_used, "removed": r.removed}
        increase_time(anvil.rpc_url, GOV.withdraw_delay + 1)
        out["withdraw"] = leaver.withdraw().gas_used
        return out


def _round_params(rpc_url: str, d: Any, gov: list[Any]) -> dict[str, Any]:
    """Propose, vote and execute a round-parameter change, then the finalizing vote that applies it."""
    change = dataclasses.replace(d.ledger.params().round_params(), reward_per_round_wei=2 * ETH,
                                 commit_period=1800)
    r = gov[0].propose_round_params(change)
    count, _total, _ = d.ledger.totals()
    votes = [g.vote(r.proposal_id, True).gas_used for g in gov[: count // 2 + 1]]
    increase_time(rpc_url, GOV.voting_period + GOV.execution_delay + 1)
    out: dict[str, Any] = {"propose_round_params": r.gas_used, "vote_round_params": round(statistics.fmean(votes)),
                           "execute_round_params": gov[-1].execute(r.proposal_id).gas_used}
    members = [d.ledger.with_account(g.account) for g in gov]
    for i, m in enumerate(members):
        m.commit(1, bytes([i + 1]) * 32, CID, 100)
    # the admitted candidates do not commit: wait for the commit deadline
    increase_time(rpc_url, d.ledger.round_info(1).commit_deadline - d.ledger.chain_time() + 1)
    for m in members:
        v = m.vote(1, b"\xa1" * 32, CID, b"\0" * 32, CID)
        if v.finalized:
            out["finalizing_vote_applying_change"] = v.gas_used
            break
    assert d.ledger.round_info(2).commit_deadline - d.ledger.round_info(2).start == 1800
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="*", default=[5, 20])
    args = parser.parse_args()
    rows = [measure(n) for n in args.n]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    from devnet.compile import OPTIMIZER_RUNS, load_contract

    code = load_contract("FederationGovernor").deployed_bytecode
    meta = {"governor_runtime_bytes": len(bytes.fromhex(code[2:])), "eip170_limit_bytes": 24_576,
            "governor_optimizer_runs": OPTIMIZER_RUNS.get("FederationGovernor.sol")}
    RESULTS.write_text(json.dumps({"targets": TARGETS, "meta": meta, "results": rows}, indent=1) + "\n")
    print(f"governor runtime {meta['governor_runtime_bytes']:,} of 24,576 bytes")
    print("| n | stake | propose | vote avg (min-max) | execute admit | slash (envelope bytes) | slash, empty keys "
          "| slash commit mismatch | leave | withdraw |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["vote"]
        print(f"| {r['n']} | {r['stake']} | {r['propose_admit']} | {v['avg']} ({v['min']}-{v['max']}) | "
              f"{r['execute_admit']} | {r['slash']['gas']} ({r['slash']['envelope_bytes']}) | "
              f"{r['slash_empty_keys']['gas']} ({r['slash_empty_keys']['envelope_bytes']}) | "
              f"{r['slash_commit_mismatch']['gas']} | {r['leave']} | "
              f"{r['withdraw']} |")
    print("\n| n | propose round params | vote (avg) | execute | finalizing vote applying it |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['propose_round_params']} | {r['vote_round_params']} | {r['execute_round_params']} | "
              f"{r['finalizing_vote_applying_change']} |")


if __name__ == "__main__":
    main()
