"""consensus: pure, I/O-free heart of fedledger (see docs/interfaces.md and docs/aggregators.md).

Every consensus-critical rule is defined here once: the canonical update codec, exact deterministic robust
aggregation and contribution scores, the n-versus-f feasibility of each rule, the reward split and Merkle tree,
the vote digest, the round outcome peers vote on and auditors re-derive, and the reputation step the contract
applies. No network, disk or clock.
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
from consensus.commitment import NO_DP, Commitment, CommittedUpdate, canonical_order
from consensus.digest import excluded_hash, vote_digest
from consensus.errors import AggregationError, CodecError, ConsensusError, RoundNotAggregatable
from consensus.feasibility import max_f, min_valid_updates, require_feasible
from consensus.keccak import keccak256
from consensus.merkle import RewardTree, reward_leaf, verify_proof
from consensus.reputation import WEIGHT_ONE, reputation_step
from consensus.rewards import split_rewards
from consensus.round_outcome import RoundOutcome, compute_round_outcome

__all__ = [
    "DEFAULT_SCALE_BITS", "NO_DP", "Q_MAX", "RULES", "WEIGHT_ONE", "AggregationError", "AggregationResult",
    "CanonicalInts", "CodecError", "Commitment", "CommittedUpdate", "ConsensusError", "ModelSpec", "RewardTree",
    "RoundNotAggregatable", "RoundOutcome", "aggregate", "apply_update", "canonical_order", "compute_round_outcome",
    "decode", "decode_ints", "encode", "encode_ints", "excluded_hash", "keccak256", "max_f", "min_valid_updates",
    "reputation_step", "require_feasible", "reward_leaf", "split_rewards", "update_hash", "verify_proof",
    "vote_digest",
]
