"""The auditor's export formats: a ledger history as JSON-safe dicts (hashes in hex, wei as strings) and as CSV
(one row per commitment, vote, finalization, failure and claimed round)."""
from __future__ import annotations

import csv
import dataclasses
import io
from typing import Any

from ledger_tools.audit.history import LedgerHistory, RoundRecord


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def round_json(rec: RoundRecord) -> dict[str, Any]:
    """One round: status, deadlines, every commitment and vote, tally per digest, finalization."""
    f = rec.finalization
    return {
        "round": rec.round, "status": rec.status.value, "start": rec.start,
        "commit_deadline": rec.commit_deadline, "vote_deadline": rec.vote_deadline,
        "commits": [{"peer": c.member, "update_hash": _hex(c.update_hash), "cid": c.cid,
                     "num_samples": c.num_samples, "epsilon": c.epsilon, "delta": c.delta, "tx": c.tx_hash,
                     "gas_used": c.gas_used} for c in rec.commits],
        "votes": [{"voter": v.member, "digest": _hex(v.digest), "aggregate_hash": _hex(v.aggregate_hash),
                   "aggregate_cid": v.aggregate_cid, "rewards_root": _hex(v.rewards_root),
                   "rewards_cid": v.rewards_cid, "excluded": list(v.excluded), "weight": v.weight, "tx": v.tx_hash,
                   "gas_used": v.gas_used} for v in rec.votes],
        "votes_per_digest": {_hex(d): {"votes": c, "weight": w} for d, (c, w) in rec.votes_per_digest().items()},
        "finalized": None if f is None else {
            "digest": _hex(f.digest), "aggregate_hash": _hex(f.aggregate_hash),
            "aggregate_cid": f.aggregate_cid, "rewards_root": _hex(f.rewards_root),
            "rewards_cid": f.rewards_cid, "excluded": list(f.excluded), "weight_for": f.weight_for,
            "total_weight": f.total_weight, "pool_wei": str(f.pool_wei), "block": f.block_number},
        "failed_by": rec.failed_by, "gas_used": rec.gas_used,
    }


def params_json(params: Any) -> dict[str, Any]:
    """The federation parameters with hashes in hex and wei as strings (JSON-safe)."""
    out = {k: (_hex(v) if isinstance(v, bytes) else v) for k, v in dataclasses.asdict(params).items()}
    out["reward_per_round_wei"] = str(params.reward_per_round_wei)
    return out


def history_json(history: LedgerHistory) -> dict[str, Any]:
    """Everything the ledger recorded: parameters, members, auditors, rounds and claims."""
    return {
        "chain_id": history.chain_id, "contract": history.address, "params": params_json(history.params),
        "members": [{"address": a, "admitted_block": b, "enc_key": _hex(history.member_keys[a])}
                    for a, b in history.members.items()],
        "auditors": [{"address": a, "enc_key": _hex(k)} for a, k in history.auditors.items()],
        "rounds": [round_json(history.rounds[r]) for r in sorted(history.rounds)],
        "claims": [{"account": c.account, "rounds": list(c.rounds), "amounts": [str(x) for x in c.amounts],
                    "total_wei": str(c.total_wei), "tx": c.tx_hash, "gas_used": c.gas_used} for c in history.claims],
    }


def history_csv(history: LedgerHistory) -> str:
    """One row per commitment, vote, finalization, failed round and claimed round."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["round", "kind", "address", "hash", "cid", "digest", "excluded", "amount_wei", "num_samples",
                "epsilon", "gas_used", "tx"])
    for r in sorted(history.rounds):
        rec = history.rounds[r]
        for c in rec.commits:
            w.writerow([r, "commit", c.member, _hex(c.update_hash), c.cid, "", "", "", c.num_samples,
                        "" if c.epsilon is None else c.epsilon, c.gas_used, c.tx_hash])
        for v in rec.votes:
            w.writerow([r, "vote", v.member, _hex(v.aggregate_hash), v.aggregate_cid, _hex(v.digest),
                        " ".join(v.excluded), "", "", "", v.gas_used, v.tx_hash])
        f = rec.finalization
        if f is not None:
            w.writerow([r, "finalized", "", _hex(f.aggregate_hash), f.aggregate_cid, _hex(f.digest),
                        " ".join(f.excluded), f.pool_wei, "", "", "", f.tx_hash])
        elif rec.status.value == "failed":
            w.writerow([r, "failed", rec.failed_by or "", "", "", "", "", "", "", "", rec.close_gas, ""])
    for c in history.claims:
        for r, amount in zip(c.rounds, c.amounts):
            w.writerow([r, "claim", c.account, "", "", "", "", amount, "", "", c.gas_used, c.tx_hash])
    return buf.getvalue()
