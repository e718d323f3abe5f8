"""The auditor's export formats: a ledger history as JSON-safe dicts (hashes in hex, wei as strings) and as CSV
(one row per commitment, vote, finalization, failure, member reward and claimed round, with block, time, vote
weight and the late and underpaid flags)."""
from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from typing import Any

from ledger_tools.audit.history import LedgerHistory, RoundRecord
from ledger_tools.audit.timeline import utc


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def round_json(rec: RoundRecord, *, reward_per_round_wei: int | None = None) -> dict[str, Any]:
    """One round: status, deadlines, every commitment and vote, tally per digest, finalization.

    With `reward_per_round_wei` (the round's own: `LedgerHistory.reward_for`), a finalized round also says whether
    its pool was `underpaid` (less than that).
    """
    f = rec.finalization
    out = {
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
    if f is not None and reward_per_round_wei is not None:
        out["finalized"]["underpaid"] = f.pool_wei < reward_per_round_wei
    return out


def params_json(params: Any) -> dict[str, Any]:
    """The federation parameters with hashes in hex and wei as strings (JSON-safe)."""
    out = {k: (_hex(v) if isinstance(v, bytes) else v) for k, v in dataclasses.asdict(params).items()}
    out["reward_per_round_wei"] = str(params.reward_per_round_wei)
    return out


def history_json(history: LedgerHistory, *, rewards: Mapping[int, Mapping[str, int]] | None = None
                 ) -> dict[str, Any]:
    """Everything the ledger recorded: parameters, members, auditors, rounds and claims (+ each round's rewards
    per member from the checked reward trees, when given)."""
    rounds = []
    for r in sorted(history.rounds):
        doc = round_json(history.rounds[r], reward_per_round_wei=history.reward_for(r))
        if rewards is not None and r in rewards:
            doc["rewards"] = {a: str(x) for a, x in rewards[r].items()}
        rounds.append(doc)
    return {
        "chain_id": history.chain_id, "contract": history.address, "block": history.to_block,
        "params": params_json(history.params),
        "members": [{"address": a, "admitted_block": b, "enc_key": _hex(history.member_keys[a])}
                    for a, b in history.members.items()],
        "auditors": [{"address": a, "enc_key": _hex(k)} for a, k in history.auditors.items()],
        "rounds": rounds,
        "underpaid_rounds": [rec.round for rec in history.underpaid()],
        "claims": [{"account": c.account, "rounds": list(c.rounds), "amounts": [str(x) for x in c.amounts],
                    "total_wei": str(c.total_wei), "block": c.block_number, "tx": c.tx_hash, "gas_used": c.gas_used}
                   for c in history.claims],
    }


CSV_COLUMNS = ["round", "kind", "address", "hash", "cid", "digest", "excluded", "amount_wei", "num_samples",
               "epsilon", "weight", "late", "underpaid", "block", "time_utc", "gas_used", "tx"]


def history_csv(history: LedgerHistory, *, rewards: Mapping[int, Mapping[str, int]] | None = None,
                times: Mapping[int, int] | None = None) -> str:
    """One row per commitment, vote, finalization, failed round, member reward (from the reward trees, when
    given) and claimed round; `times` (block -> timestamp) fills the time column."""
    times = times or {}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_COLUMNS)

    def row(r: int, kind: str, *, block: int = 0, **cells: Any) -> None:
        cells.update(round=r, kind=kind, block=block or "", time_utc=utc(times.get(block)) if block else "")
        w.writerow(["" if cells.get(col) is None else cells.get(col, "") for col in CSV_COLUMNS])

    for r in sorted(history.rounds):
        rec = history.rounds[r]
        for c in rec.commits:
            row(r, "commit", address=c.member, hash=_hex(c.update_hash), cid=c.cid, num_samples=c.num_samples,
                epsilon=c.epsilon, block=c.block_number, gas_used=c.gas_used, tx=c.tx_hash)
        for v in rec.votes:
            row(r, "vote", address=v.member, hash=_hex(v.aggregate_hash), cid=v.aggregate_cid, digest=_hex(v.digest),
                excluded=" ".join(v.excluded), weight=v.weight, late=str(v.late).lower(), block=v.block_number,
                gas_used=v.gas_used, tx=v.tx_hash)
        f = rec.finalization
        if f is not None:
            row(r, "finalized", hash=_hex(f.aggregate_hash), cid=f.aggregate_cid, digest=_hex(f.digest),
                excluded=" ".join(f.excluded), amount_wei=f.pool_wei, weight=f.weight_for,
                underpaid=str(history.is_underpaid(rec)).lower(), block=f.block_number, tx=f.tx_hash)
            for account, amount in sorted((rewards or {}).get(r, {}).items()):
                row(r, "reward", address=account, cid=f.rewards_cid, hash=_hex(f.rewards_root), amount_wei=amount)
        elif rec.status.value == "failed":
            row(r, "failed", address=rec.failed_by, block=rec.failed_block, gas_used=rec.close_gas)
    for c in history.claims:
        for r, amount in zip(c.rounds, c.amounts):
            row(r, "claim", address=c.account, amount_wei=amount, block=c.block_number, gas_used=c.gas_used,
                tx=c.tx_hash)
    return buf.getvalue()
