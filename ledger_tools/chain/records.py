"""Typed records of the ledger: parameters, round and member views, receipts, and one record per event.

Pure data (no web3 import), so the auditor's history, the cache and the tests share them. `from_event` is the
one decoder of each event: it takes the event's arguments either as web3 decodes a log or in their JSON form
(hex strings for bytes, as the auditor's event cache stores them). `gas_used` is the gas of the event's
transaction when the reader fetched receipts (the event cache does), else 0. Commitments use the protocol's own
`consensus.Commitment`.
"""
from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from consensus.commitment import NO_DP, Commitment
from consensus.commitment import bytes32 as _b32
from consensus.reputation import WEIGHT_ONE

__all__ = [
    "NO_DP",
    "WEIGHT_ONE",
    "Announcement",
    "AuditorInfo",
    "AuditorInit",
    "Claim",
    "ClaimReceipt",
    "Commitment",
    "Finalization",
    "GlobalModel",
    "LedgerParams",
    "MemberInfo",
    "MemberInit",
    "Phase",
    "RoundInfo",
    "RoundParamsUpdate",
    "RoundStatus",
    "Sweep",
    "SweepReceipt",
    "TxReceipt",
    "Vote",
    "VoteReceipt",
    "WeightUpdate",
]


class RoundStatus(enum.IntEnum):
    NONE = 0  # not opened yet
    OPEN = 1
    FINALIZED = 2
    FAILED = 3


class Phase(enum.IntEnum):
    NONE = 0  # future round
    COMMIT = 1
    VOTE = 2
    EXPIRED = 3  # vote deadline passed without finalization; close_failed_round() it
    FINALIZED = 4
    FAILED = 5


@dataclass(frozen=True)
class RoundParamsUpdate:
    """The round parameters a passed proposal may change (IFederationLedger.RoundParamsUpdate); the ledger applies
    them from the next round to open, so the open round keeps its periods, quorum and pool. Declared once:
    `LedgerParams` extends them with the parameters fixed at deployment."""

    rule: str
    rule_param: int
    f: int
    quorum_bps: int
    commit_period: int
    vote_period: int
    reward_per_round_wei: int

    def as_tuple(self) -> tuple:
        """The ABI struct, fields in declaration order."""
        return tuple(getattr(self, f.name) for f in fields(RoundParamsUpdate))


@dataclass(frozen=True)
class LedgerParams(RoundParamsUpdate):
    """Federation parameters (constructor arguments of the contract): the round parameters, then the fixed ones."""

    model_spec_hash: bytes
    genesis_model_hash: bytes
    genesis_model_cid: str
    scale_bits: int
    alpha_bps: int
    sample_cap: int

    def round_params(self) -> RoundParamsUpdate:
        """Just the round parameters (what `setRoundParams` / a round-params proposal takes)."""
        return RoundParamsUpdate(*super().as_tuple())

    def as_tuple(self) -> tuple:
        return (*super().as_tuple(), _b32(self.model_spec_hash), _b32(self.genesis_model_hash),
                self.genesis_model_cid, self.scale_bits, self.alpha_bps, self.sample_cap)


@dataclass(frozen=True)
class MemberInit:
    address: str
    enc_key: bytes
    weight: int = WEIGHT_ONE


@dataclass(frozen=True)
class AuditorInit:
    address: str
    enc_key: bytes


@dataclass(frozen=True)
class TxReceipt:
    tx_hash: str
    block_number: int
    gas_used: int


@dataclass(frozen=True)
class VoteReceipt(TxReceipt):
    digest: bytes
    weight: int  # weight added to the tally (0 for a late vote)
    finalized: bool
    late: bool = False  # cast after the round was finalized (before its vote deadline): reputation only


@dataclass(frozen=True)
class ClaimReceipt(TxReceipt):
    total_wei: int


@dataclass(frozen=True)
class SweepReceipt(TxReceipt):
    amount_wei: int  # unclaimed reward returned to the pool


@dataclass(frozen=True)
class Sweep:
    round: int
    swept_by: str
    amount_wei: int
    block_number: int
    tx_hash: str

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str) -> "Sweep":
        """From a `Swept` event."""
        return cls(int(args["round"]), args["sweptBy"], int(args["amount"]), block_number, tx_hash)


@dataclass(frozen=True)
class RoundInfo:
    round: int
    status: RoundStatus
    start: int
    commit_deadline: int
    vote_deadline: int
    commit_count: int
    unclaimed_wei: int  # open round: its pool (fixed at open); finalized: what is left to claim (0: empty tree/swept)
    rewards_root: bytes | None  # None unless finalized
    aggregate_hash: bytes | None  # None unless finalized (read from the RoundFinalized event)
    # open round: the members counting in it (fixed when it opened, minus removals; a member admitted while it is
    # open counts from the next round), its commit phase ends when commit_count reaches it; 0 for other rounds
    member_count: int = 0

    def phase_at(self, now: float, member_count: int | None = None, slack: float = 0.0) -> Phase:
        """The round's phase at time `now`, by the contract's rule: the commit phase ends at its deadline or once
        `member_count` (default: the members counting in the round) have committed; `slack` s of clock skew are
        tolerated at both deadlines. The one copy of the rule: the binding judges by chain time, peers by their
        own clock (`peer.loop.round_clock`)."""
        if self.status != RoundStatus.OPEN:
            return {RoundStatus.NONE: Phase.NONE, RoundStatus.FINALIZED: Phase.FINALIZED}.get(self.status, Phase.FAILED)
        members = self.member_count if member_count is None else member_count
        if self.commit_count < members and now < self.commit_deadline + slack:
            return Phase.COMMIT
        return Phase.VOTE if now < self.vote_deadline + slack else Phase.EXPIRED


@dataclass(frozen=True)
class MemberInfo:
    address: str
    is_member: bool
    enc_key: bytes
    weight: int  # stored weight
    effective_weight: int  # after pending lazy reputation updates
    last_commit_round: int
    last_vote_round: int
    vote_pending: bool


@dataclass(frozen=True)
class AuditorInfo:
    address: str
    enc_key: bytes


@dataclass(frozen=True)
class GlobalModel:
    round: int  # 0 = genesis
    hash: bytes
    cid: str


@dataclass(frozen=True)
class Vote:
    round: int
    member: str
    digest: bytes
    aggregate_hash: bytes
    aggregate_cid: str
    rewards_root: bytes
    rewards_cid: str
    excluded: tuple[str, ...]
    weight: int  # weight added to the round's tally (0 for a late vote)
    block_number: int
    tx_hash: str
    gas_used: int = 0
    late: bool = False  # cast after the round was finalized, before its vote deadline: moves reputation only

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str, gas_used: int = 0) -> "Vote":
        """From a `Voted` event (`late` absent in logs of older contract versions: an on-time vote)."""
        return cls(int(args["round"]), args["member"], _b32(args["digest"]), _b32(args["aggregateHash"]),
                   args["aggregateCid"], _b32(args["rewardsRoot"]), args["rewardsCid"], tuple(args["excluded"]),
                   int(args["weight"]), block_number, tx_hash, gas_used, bool(args.get("late", False)))


@dataclass(frozen=True)
class Finalization:
    round: int
    digest: bytes
    aggregate_hash: bytes
    aggregate_cid: str
    rewards_root: bytes
    rewards_cid: str
    excluded: tuple[str, ...]
    weight_for: int
    total_weight: int
    pool_wei: int  # the round's pool, fixed at open: what its tree splits (reserved unless rewards_root is 0)
    block_number: int
    tx_hash: str

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str) -> "Finalization":
        """From a `RoundFinalized` event."""
        return cls(int(args["round"]), _b32(args["digest"]), _b32(args["aggregateHash"]), args["aggregateCid"],
                   _b32(args["rewardsRoot"]), args["rewardsCid"], tuple(args["excluded"]), int(args["weightFor"]),
                   int(args["totalWeight"]), int(args["pool"]), block_number, tx_hash)


@dataclass(frozen=True)
class Claim:
    account: str
    rounds: tuple[int, ...]
    amounts: tuple[int, ...]
    total_wei: int
    block_number: int
    tx_hash: str
    gas_used: int = 0

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str, gas_used: int = 0) -> "Claim":
        """From a `Claimed` event."""
        return cls(args["account"], tuple(int(r) for r in args["rounds"]), tuple(int(x) for x in args["amounts"]),
                   int(args["total"]), block_number, tx_hash, gas_used)


@dataclass(frozen=True)
class WeightUpdate:
    member: str
    old_weight: int
    new_weight: int
    vote_round: int
    rewarded: bool
    missed_rounds: int
    block_number: int
    tx_hash: str

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str) -> "WeightUpdate":
        """From a `WeightUpdated` event."""
        return cls(args["member"], int(args["oldWeight"]), int(args["newWeight"]), int(args["voteRound"]),
                   bool(args["rewarded"]), int(args["missedRounds"]), block_number, tx_hash)


@dataclass(frozen=True)
class Announcement:
    member: str
    multiaddr: str  # as the member sent it; peers check it parses before dialling
    block_number: int
    tx_hash: str

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str) -> "Announcement":
        """From a `MemberAnnounced` event."""
        return cls(args["member"], str(args["multiaddr"]), block_number, tx_hash)
