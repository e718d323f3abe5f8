"""consensus: pure, I/O-free heart of fedledger (see docs/interfaces.md and docs/aggregators.md).

Canonical update codec, exact deterministic robust aggregation, contribution scores, reward split,
reward Merkle tree and the vote digest. No network, disk or clock.
"""
from consensus.aggregate import AggregationResult, aggregate
from consensus.aggregators import RULES
from consensus.codec import (
    DEFAULT_SCALE_BITS,
    Q_MAX,
    CanonicalInts,
    ModelSpec,
    apply_update,
    decode,
    decode_ints,
    encode,
    encode_ints,
    update_hash,
)
from consensus.digest import excluded_hash, vote_digest
from consensus.errors import AggregationError, CodecError
from consensus.keccak import keccak256
from consensus.merkle import RewardTree, reward_leaf, verify_proof
from consensus.rewards import split_rewards

__all__ = [
    "DEFAULT_SCALE_BITS", "Q_MAX", "RULES", "AggregationError", "AggregationResult", "CanonicalInts",
    "CodecError", "ModelSpec", "RewardTree", "aggregate", "apply_update", "decode", "decode_ints", "encode",
    "encode_ints", "excluded_hash", "keccak256", "reward_leaf", "split_rewards", "update_hash",
    "verify_proof", "vote_digest",
]
