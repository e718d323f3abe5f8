"""The outcome of one round, derived deterministically from what is on chain and on IPFS.

Peers compute this to decide what to vote; auditors compute it to check what was finalized. Both must
get the same bytes, so this is the single place that turns (previous model, committed updates,
federation parameters) into (new model, scores, excluded set, reward tree, vote digest). It does no I/O:
callers fetch, unseal and pass the canonical update bytes.
"""
from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import consensus
from consensus.commitment import CommittedUpdate
from consensus.errors import RoundNotAggregatable
from consensus.rewards import contribution_scores


@dataclass(frozen=True)
class RoundOutcome:
    """Everything a peer votes on, and everything an auditor compares with the chain."""

    round: int
    peers: tuple[str, ...]
    valid: tuple[bool, ...]
    scores: tuple[int, ...]
    excluded: tuple[str, ...]
    amounts: tuple[int, ...]
    new_model: bytes
    aggregate_update: bytes
    aggregate_hash: bytes
    reward_tree: "consensus.RewardTree"
    digest: bytes
    reward_scores: tuple[int, ...] = ()  # what the pool is split by (`consensus.rewards.contribution_scores`)

    @property
    def rewards_root(self) -> bytes:
        return self.reward_tree.root


def rule_params(rule: str, rule_param: int) -> dict[str, int]:
    """Turn the on-chain (rule, ruleParam) into keyword arguments of `consensus.aggregate`.

    ruleParam is Multi-Krum's m; 0 leaves m to the rule's own default, n − f over the updates consensus
    finds usable (so a garbage blob never makes the default impossible). Other rules take no parameter.
    """
    if rule.split("+")[-1] == "multi_krum" and rule_param > 0:
        return {"m": rule_param}
    return {}


def compute_round_outcome(
    *,
    round: int,
    previous_model: bytes,
    updates: Sequence[CommittedUpdate],
    rule: str,
    rule_param: int,
    f: int,
    reward_pool: int,
    sample_cap: int = 0,
    spec: "consensus.ModelSpec | None" = None,
    scale_bits: int | None = None,
) -> RoundOutcome:
    """Aggregate the round's committed updates in canonical order and derive the vote.

    Raises RoundNotAggregatable when the rule cannot run on the valid updates.
    """
    ordered = sorted(updates, key=lambda u: int(u.member, 16))
    peers = tuple(u.member for u in ordered)
    if len(set(p.lower() for p in peers)) != len(peers):
        raise ValueError("duplicate peer in commitments")
    blobs: list[bytes | None] = []
    for item in ordered:
        ok = item.update is not None and hashlib.sha256(item.update).digest() == item.update_hash
        blobs.append(item.update if ok else None)
    weights = [max(0, min(u.num_samples, sample_cap) if sample_cap > 0 else u.num_samples) for u in ordered]
    try:
        result = consensus.aggregate(
            rule,
            blobs,
            f=f,
            weights=weights,
            spec=spec,
            scale_bits=scale_bits,
            **rule_params(rule, rule_param),
        )
    except consensus.AggregationError as exc:
        raise RoundNotAggregatable(f"round {round}: {exc}") from exc
    new_model = consensus.apply_update(previous_model, result.aggregate)
    aggregate_hash = consensus.update_hash(new_model)
    scores = tuple(int(s) for s in result.scores)
    # The protocol's excluded set: unusable blobs (consensus' own `excluded`) plus valid updates the rule
    # gave no weight at all (e.g. not selected by Multi-Krum) — they earn nothing and lose reputation.
    unusable = set(result.excluded)  # missing, hash mismatch, undecodable or off-spec: consensus decides
    excluded_idx = unusable | {i for i, score in enumerate(scores) if score == 0}
    excluded = tuple(peers[i] for i in sorted(excluded_idx))
    valid_idx = [i for i in range(len(peers)) if i not in unusable]
    rows = [consensus.decode_ints(blob, spec=spec, scale_bits=scale_bits).values
            for blob in (blobs[i] for i in valid_idx) if blob is not None]  # valid: never None
    agg_ints = consensus.decode_ints(result.aggregate).values
    reward_scores = [0] * len(peers)
    for i, s in zip(valid_idx, contribution_scores(rows, agg_ints, [scores[i] for i in valid_idx])):
        reward_scores[i] = s
    amounts = tuple(int(a) for a in consensus.split_rewards(reward_pool, reward_scores))
    tree = consensus.RewardTree.build(round, list(peers), list(amounts))
    digest = consensus.vote_digest(aggregate_hash, tree.root, list(excluded))
    return RoundOutcome(
        round=round,
        peers=peers,
        valid=tuple(i not in unusable for i in range(len(peers))),
        scores=scores,
        excluded=excluded,
        amounts=amounts,
        new_model=new_model,
        aggregate_update=result.aggregate,
        aggregate_hash=aggregate_hash,
        reward_tree=tree,
        digest=digest,
        reward_scores=tuple(reward_scores),
    )
