"""Typed Python binding of contracts/FederationLedger.sol over web3 8.

Callers never touch ABIs: reads return dataclasses, transactions are signed locally with eth-account (nonce
from the node's pending count, gas estimated, receipt status checked) and return a `TxReceipt` with the gas
used, and every Solidity custom error surfaces as its own `LedgerError` subclass (`NotMember`, `AlreadyVoted`,
...) carrying the error's arguments. An unreachable RPC endpoint raises `LedgerUnavailable`.
"""
from __future__ import annotations

import enum
import functools
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import requests
from eth_abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.logs import DISCARD as _DISCARD
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    ProviderConnectionError,
    TimeExhausted,
    Web3RPCError,
)

ARTIFACT_PATH = Path(__file__).resolve().parent.parent / "contracts" / "build" / "FederationLedger.json"
WEIGHT_ONE = 1_000_000
NO_DP = 2**64 - 1  # epsilonE6 value meaning "no differential privacy"
ZERO32 = b"\x00" * 32

T = TypeVar("T")


# --------------------------------------------------------------------------- errors


class LedgerError(Exception):
    """Base of every error raised by the binding."""


class LedgerUnavailable(LedgerError):
    """The Ethereum JSON-RPC endpoint cannot be reached (or the contract is absent there)."""


class TransactionFailed(LedgerError):
    """A transaction reverted without a decodable custom error (panic, out of gas, ...)."""


class ContractRevert(LedgerError):
    """A custom error raised by the contract; `.args_by_name` holds its arguments."""

    solidity_name = ""
    template = ""

    def __init__(self, **args_by_name: Any) -> None:
        self.args_by_name = args_by_name
        for key, value in args_by_name.items():
            setattr(self, key, value)
        detail = self.template.format(**args_by_name) if self.template else ""
        signature = ", ".join(f"{k}={_show(v)}" for k, v in args_by_name.items())
        super().__init__(f"{self.solidity_name}({signature})" + (f": {detail}" if detail else ""))


def _revert(name: str, template: str = "") -> type[ContractRevert]:
    cls = type(name, (ContractRevert,), {"solidity_name": name, "template": template, "__doc__": f"Solidity `{name}`."})
    cls.__module__ = __name__
    return cls


NotMember = _revert("NotMember", "{account} is not a member of the federation")
AlreadyMember = _revert("AlreadyMember", "{account} is already a member")
AlreadyAuditor = _revert("AlreadyAuditor", "{account} is already an auditor")
Unauthorized = _revert("Unauthorized", "{caller} may not call this (owner only)")
InvalidParameter = _revert("InvalidParameter", "invalid value for {name}")
RoundNotOpen = _revert("RoundNotOpen", "round {round} is not the open round")
CommitClosed = _revert("CommitClosed", "the commit phase of round {round} is over")
AlreadyCommitted = _revert("AlreadyCommitted", "{member} already committed in round {round}")
VotingNotOpen = _revert("VotingNotOpen", "round {round} is still in its commit phase")
VotingClosed = _revert("VotingClosed", "the vote deadline of round {round} has passed")
AlreadyVoted = _revert("AlreadyVoted", "{member} already voted in round {round}")
VoteOutOfOrder = _revert("VoteOutOfOrder", "a late vote for round {round} after voting in round {lastVoteRound}")
AlreadySettled = _revert("AlreadySettled", "the reputation of {member} is already settled past round {round} "
                         "(admitted after it, or committed two rounds later): no late vote")
ExcludedNotSorted = _revert("ExcludedNotSorted", "excluded addresses must be strictly ascending (index {index})")
DigestMismatch = _revert("DigestMismatch", "the digest does not match the vote's contents")
VoteDeadlineNotReached = _revert("VoteDeadlineNotReached", "round {round} can be closed only after {voteDeadline}")
LengthMismatch = _revert("LengthMismatch", "rounds, amounts and proofs must be non-empty and equally long")
NotFinalized = _revert("NotFinalized", "round {round} is not finalized (open, failed or unknown)")
AlreadyClaimed = _revert("AlreadyClaimed", "{account} already claimed round {round}")
InvalidProof = _revert("InvalidProof", "the Merkle proof for round {round} does not match its rewards root")
PoolExceeded = _revert("PoolExceeded", "round {round} has only {unclaimed} wei unclaimed")
TransferFailed = _revert("TransferFailed", "paying {amount} wei to {to} failed")
ReentrantCall = _revert("ReentrantCall", "reentrant call rejected")

ERRORS: dict[str, type[ContractRevert]] = {
    cls.solidity_name: cls
    for cls in (
        NotMember, AlreadyMember, AlreadyAuditor, Unauthorized, InvalidParameter, RoundNotOpen, CommitClosed,
        AlreadyCommitted, VotingNotOpen, VotingClosed, AlreadyVoted, VoteOutOfOrder, AlreadySettled,
        ExcludedNotSorted, DigestMismatch,
        VoteDeadlineNotReached, LengthMismatch, NotFinalized, AlreadyClaimed, InvalidProof, PoolExceeded,
        TransferFailed, ReentrantCall,
    )
}


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------- data


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
class LedgerParams:
    """Federation parameters (constructor arguments of the contract)."""

    rule: str
    rule_param: int
    f: int
    quorum_bps: int
    commit_period: int
    vote_period: int
    reward_per_round_wei: int
    model_spec_hash: bytes
    genesis_model_hash: bytes
    genesis_model_cid: str
    scale_bits: int
    alpha_bps: int
    sample_cap: int

    def as_tuple(self) -> tuple:
        return (
            self.rule, self.rule_param, self.f, self.quorum_bps, self.commit_period, self.vote_period,
            self.reward_per_round_wei, _b32(self.model_spec_hash), _b32(self.genesis_model_hash),
            self.genesis_model_cid, self.scale_bits, self.alpha_bps, self.sample_cap,
        )


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
class RoundInfo:
    round: int
    status: RoundStatus
    start: int
    commit_deadline: int
    vote_deadline: int
    commit_count: int
    unclaimed_wei: int
    rewards_root: bytes | None  # None unless finalized
    aggregate_hash: bytes | None  # None unless finalized (read from the RoundFinalized event)


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


# Event records. `from_event` is the one decoder of each event: it takes the event's arguments either as web3
# decodes a log or in their JSON form (hex strings for bytes, as the auditor's event cache stores them).
# `gas_used` is the gas of the event's transaction when the reader fetched receipts (the event cache does), else 0.


@dataclass(frozen=True)
class Commitment:
    round: int
    member: str
    update_hash: bytes
    cid: str
    num_samples: int
    epsilon_e6: int
    delta_e18: int
    block_number: int
    tx_hash: str
    gas_used: int = 0

    @property
    def epsilon(self) -> float | None:
        """Privacy spent (ε); None when the member trained without differential privacy."""
        return None if self.epsilon_e6 == NO_DP else self.epsilon_e6 / 1e6

    @property
    def delta(self) -> float:
        return self.delta_e18 / 1e18

    @classmethod
    def from_event(cls, args: Mapping[str, Any], block_number: int, tx_hash: str, gas_used: int = 0) -> "Commitment":
        """From a `Committed` event."""
        return cls(int(args["round"]), args["member"], _b32(args["updateHash"]), args["cid"], int(args["numSamples"]),
                   int(args["epsilonE6"]), int(args["deltaE18"]), block_number, tx_hash, gas_used)


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
    pool_wei: int
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


# --------------------------------------------------------------------------- protocol hashing


def _b32(value: bytes | str) -> bytes:
    raw = bytes.fromhex(value.removeprefix("0x")) if isinstance(value, str) else bytes(value)
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes, got {len(raw)}")
    return raw


def excluded_hash(excluded: Sequence[str]) -> bytes:
    """keccak256(abi.encodePacked(address[])): each address left-padded to 32 bytes."""
    return bytes(Web3.keccak(b"".join(bytes.fromhex(a[2:]).rjust(32, b"\0") for a in excluded)))


def vote_digest(aggregate_hash: bytes, rewards_root: bytes, excluded: Sequence[str]) -> bytes:
    """keccak256(aggregateHash ‖ rewardsRoot ‖ excludedHash), as the contract recomputes it."""
    return bytes(Web3.keccak(_b32(aggregate_hash) + _b32(rewards_root) + excluded_hash(excluded)))


def reward_leaf(round_: int, account: str, amount: int) -> bytes:
    """OpenZeppelin StandardMerkleTree leaf keccak256(keccak256(abi.encode(round, account, amount)))."""
    encoded = round_.to_bytes(32, "big") + bytes.fromhex(account[2:]).rjust(32, b"\0") + amount.to_bytes(32, "big")
    return bytes(Web3.keccak(Web3.keccak(encoded)))


def _rpow(x: int, n: int, wad: int = 10**18) -> int:
    z = wad
    while n > 0:
        if n & 1:
            z = z * x // wad
        n >>= 1
        if n > 0:
            x = x * x // wad
    return z


def reputation_step(weight: int, alpha_bps: int, rewarded: bool, missed: int = 0) -> int:
    """The contract's reputation rule: one outcome for the member's vote round, then `missed` outcome-0 rounds.

    outcome 1: w + floor((ONE - w) * alpha)   (or w - floor((w - ONE) * alpha) above ONE)
    outcome 0: floor(w * (1 - alpha));   k missed rounds: floor(w * rpow(1 - alpha, k)) in 1e18 fixed point.
    """
    w = weight
    if rewarded:
        w = w + (WEIGHT_ONE - w) * alpha_bps // 10_000 if w <= WEIGHT_ONE else w - (w - WEIGHT_ONE) * alpha_bps // 10_000
    else:
        w = w * (10_000 - alpha_bps) // 10_000
    if missed and w:
        w = w * _rpow((10_000 - alpha_bps) * 10**14, missed) // 10**18
    return w


# --------------------------------------------------------------------------- binding


def _load_artifact() -> dict[str, Any]:
    try:
        record = json.loads(ARTIFACT_PATH.read_text())
    except OSError as exc:
        raise LedgerError(f"contract artifact missing at {ARTIFACT_PATH}; run `python -m devnet.compile`") from exc
    return record["contracts"]["FederationLedger"]


def _rpc_guard(method: Callable[..., T]) -> Callable[..., T]:
    @functools.wraps(method)
    def wrapper(self: "FederationLedger", *args: Any, **kwargs: Any) -> T:
        try:
            return method(self, *args, **kwargs)
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout, ProviderConnectionError,
                ConnectionError) as exc:
            raise LedgerUnavailable(f"cannot reach the Ethereum RPC at {self.rpc_url} ({type(exc).__name__})") from None

    return wrapper


class FederationLedger:
    """Binding of one deployed FederationLedger. `account` (LocalAccount or private key) signs transactions."""

    def __init__(
        self,
        rpc_url: str,
        address: str,
        account: LocalAccount | str | None = None,
        *,
        deploy_block: int = 0,
        abi: list[dict[str, Any]] | None = None,
        tx_timeout: float = 120.0,
        w3: Web3 | None = None,
    ) -> None:
        self.rpc_url = rpc_url
        self.w3 = w3 or Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.address = to_checksum_address(address)
        self.abi = abi or _load_artifact()["abi"]
        self.contract = self.w3.eth.contract(address=self.address, abi=self.abi)
        self.account: LocalAccount | None = Account.from_key(account) if isinstance(account, str) else account
        self.deploy_block = deploy_block
        self.tx_timeout = tx_timeout
        self._lock = threading.Lock()
        self._errors = _error_table(self.abi)
        self._params: LedgerParams | None = None
        self._chain_id: int | None = None

    def with_account(self, account: LocalAccount | str) -> "FederationLedger":
        """The same ledger (same connection), signing as `account`."""
        other = FederationLedger(self.rpc_url, self.address, account, deploy_block=self.deploy_block, abi=self.abi,
                                 tx_timeout=self.tx_timeout, w3=self.w3)
        other._params, other._chain_id = self._params, self._chain_id
        return other

    @property
    @_rpc_guard
    def chain_id(self) -> int:
        """The chain id (cached: it is part of every signed transaction and gossip envelope)."""
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    @_rpc_guard
    def check(self) -> "FederationLedger":
        """Raise LedgerUnavailable unless the RPC answers and a contract is deployed at `address`."""
        if not self.w3.eth.get_code(self.address):
            raise LedgerUnavailable(f"no contract at {self.address} on the chain at {self.rpc_url}")
        return self

    # ---------------------------------------------------------------- deploy

    @classmethod
    def deploy(
        cls,
        rpc_url: str,
        deployer: LocalAccount | str,
        params: LedgerParams,
        members: Sequence[MemberInit],
        auditors: Sequence[AuditorInit] = (),
        *,
        funding_wei: int = 0,
        abi: list[dict[str, Any]] | None = None,
        bytecode: str | None = None,
    ) -> "FederationLedger":
        """Deploy a new federation (the deployer becomes its owner) and return a binding signing as the deployer."""
        if abi is None or bytecode is None:
            artifact = _load_artifact()
            abi, bytecode = artifact["abi"], artifact["bytecode"]
        ledger = cls(rpc_url, "0x" + "00" * 20, deployer, abi=abi)
        factory = ledger.w3.eth.contract(abi=abi, bytecode=bytecode)
        ctor = factory.constructor(
            params.as_tuple(),
            [(to_checksum_address(m.address), _b32(m.enc_key), m.weight) for m in members],
            [(to_checksum_address(a.address), _b32(a.enc_key)) for a in auditors],
        )
        receipt = ledger._send(ctor, value=funding_wei)
        address = ledger.w3.eth.get_transaction_receipt(receipt.tx_hash)["contractAddress"]
        deployed = cls(rpc_url, address, ledger.account, deploy_block=receipt.block_number, abi=abi, w3=ledger.w3)
        deployed.deploy_receipt = receipt
        return deployed

    # ---------------------------------------------------------------- reads

    @_rpc_guard
    def params(self) -> LedgerParams:
        if self._params is None:
            p = self.contract.functions.parameters().call()
            self._params = LedgerParams(p[0], p[1], p[2], p[3], p[4], p[5], p[6], bytes(p[7]), bytes(p[8]), p[9],
                                        p[10], p[11], p[12])
        return self._params

    @_rpc_guard
    def owner(self) -> str:
        return self.contract.functions.owner().call()

    @_rpc_guard
    def current_round(self) -> int:
        return self.contract.functions.currentRound().call()

    @_rpc_guard
    def totals(self) -> tuple[int, int, int]:
        """(member count, total voting weight, number of finalized rounds)."""
        return tuple(self.contract.functions.totals().call())

    def total_weight(self) -> int:
        return self.totals()[1]

    @_rpc_guard
    def round_info(self, round_: int) -> RoundInfo:
        status, start, commit_dl, vote_dl, count, unclaimed, _root_high, _prefix = (
            self.contract.functions.roundInfo(round_).call())
        status = RoundStatus(status)
        aggregate_hash = rewards_root = None
        if status == RoundStatus.FINALIZED:
            fin = self.finalization(round_)
            if fin is not None:
                aggregate_hash, rewards_root = fin.aggregate_hash, fin.rewards_root
        return RoundInfo(round_, status, start, commit_dl, vote_dl, count, unclaimed, rewards_root, aggregate_hash)

    @_rpc_guard
    def phase(self, round_: int | None = None) -> Phase:
        """Phase of `round_` (default: the open round) at the latest block's time."""
        return Phase(self.contract.functions.phase(self.current_round() if round_ is None else round_).call())

    @_rpc_guard
    def members(self) -> list[str]:
        return list(self.contract.functions.members().call())

    @_rpc_guard
    def member_info(self, address: str) -> MemberInfo:
        address = to_checksum_address(address)
        is_member, key, weight, last_commit, last_vote, _seen, pending, _self_ex, _prefix = (
            self.contract.functions.memberInfo(address).call()
        )
        effective = self.contract.functions.effectiveWeight(address).call()
        return MemberInfo(address, is_member, bytes(key), weight, effective, last_commit, last_vote, pending)

    @_rpc_guard
    def member_keys(self) -> dict[str, bytes]:
        """Every member's X25519 public key (one call per member; `member_info` costs two)."""
        return {m: bytes(self.contract.functions.memberKey(m).call()) for m in self.members()}

    @_rpc_guard
    def auditors(self) -> list[AuditorInfo]:
        return [AuditorInfo(a, bytes(self.contract.functions.auditorKey(a).call()))
                for a in self.contract.functions.auditors().call()]

    @_rpc_guard
    def model(self) -> GlobalModel:
        """The current global model: hash and round from storage, CID from the round's finalization event."""
        model_hash, round_ = self.contract.functions.model().call()
        if round_ == 0:
            return GlobalModel(0, bytes(model_hash), self.params().genesis_model_cid)
        fin = self.finalization(round_)
        if fin is None:
            raise LedgerError(f"round {round_} is the model round but its RoundFinalized event is missing")
        return GlobalModel(round_, bytes(model_hash), fin.aggregate_cid)

    @_rpc_guard
    def tally(self, round_: int, digest: bytes) -> int:
        return self.contract.functions.tally(round_, _b32(digest)).call()

    @_rpc_guard
    def is_claimed(self, account: str, round_: int) -> bool:
        return self.contract.functions.isClaimed(to_checksum_address(account), round_).call()

    @_rpc_guard
    def balance(self) -> int:
        return self.w3.eth.get_balance(self.address)

    @_rpc_guard
    def reserved(self) -> int:
        return self.contract.functions.reserved().call()

    def next_reward_pool(self) -> int:
        """What finalizing the open round would reserve now: min(rewardPerRound, balance − reserved).
        Peers split exactly this amount in their reward tree before they vote."""
        return max(0, min(self.params().reward_per_round_wei, self.balance() - self.reserved()))

    @_rpc_guard
    def chain_time(self) -> int:
        """Timestamp of the latest block (deadlines are compared with block time, not wall-clock time)."""
        return self.w3.eth.get_block("latest")["timestamp"]

    # ---------------------------------------------------------------- transactions

    def commit(self, round_: int, update_hash: bytes, cid: str, num_samples: int, epsilon_e6: int = NO_DP,
               delta_e18: int = 0) -> TxReceipt:
        """Commit this member's update of `round_` (sha256 of its canonical bytes, CID of the sealed blob)."""
        return self._send(self.contract.functions.commit(round_, _b32(update_hash), cid, num_samples, epsilon_e6,
                                                         delta_e18))

    def vote(self, round_: int, aggregate_hash: bytes, aggregate_cid: str, rewards_root: bytes, rewards_cid: str,
             excluded: Sequence[str] = (), digest: bytes | None = None, *, gas: int | None = None,
             min_gas: int | None = None) -> VoteReceipt:
        """Vote for (aggregate, rewards root, excluded set); `excluded` must be sorted ascending.
        The digest is computed when not given. `.finalized` tells whether this vote finalized the round.
        A vote for a round already finalized (until its vote deadline) is a late vote (`.late`): recorded, not
        tallied, it settles this member's reputation for that round.
        `gas`: a fixed gas limit instead of an estimate (see `_send`)."""
        excluded = [to_checksum_address(a) for a in excluded]
        if digest is None:
            digest = vote_digest(aggregate_hash, rewards_root, excluded)
        receipt, raw = self._send(
            self.contract.functions.vote(round_, _b32(digest), _b32(aggregate_hash), aggregate_cid,
                                         _b32(rewards_root), rewards_cid, excluded),
            return_raw=True, gas=gas, min_gas=min_gas,
        )
        voted = self.contract.events.Voted().process_receipt(raw, errors=_DISCARD)
        finalized = bool(self.contract.events.RoundFinalized().process_receipt(raw, errors=_DISCARD))
        args = voted[0]["args"] if voted else {}
        return VoteReceipt(receipt.tx_hash, receipt.block_number, receipt.gas_used, bytes(digest),
                           int(args.get("weight", 0)), finalized, bool(args.get("late", False)))

    def close_failed_round(self, round_: int, *, gas: int | None = None) -> TxReceipt:
        """Close `round_` as failed after its vote deadline (anyone may); the next round opens.
        `gas`: a fixed gas limit instead of an estimate (see `_send`)."""
        return self._send(self.contract.functions.closeFailedRound(round_), gas=gas)

    def claim(self, rounds: Sequence[int], amounts: Sequence[int], proofs: Sequence[Sequence[bytes]]) -> ClaimReceipt:
        """Claim this account's rewards of several finalized rounds in one transaction."""
        receipt = self._send(self.contract.functions.claim(
            list(rounds), list(amounts), [[_b32(p) for p in proof] for proof in proofs]))
        return ClaimReceipt(receipt.tx_hash, receipt.block_number, receipt.gas_used, sum(amounts))

    def admit_member(self, address: str, enc_key: bytes, weight: int = WEIGHT_ONE) -> TxReceipt:
        """Owner only: admit a new member."""
        return self._send(self.contract.functions.admitMember(to_checksum_address(address), _b32(enc_key), weight))

    def register_auditor(self, address: str, enc_key: bytes) -> TxReceipt:
        """Owner only: register an auditor."""
        return self._send(self.contract.functions.registerAuditor(to_checksum_address(address), _b32(enc_key)))

    def fund(self, value_wei: int) -> TxReceipt:
        """Add `value_wei` to the reward pool."""
        return self._send(self.contract.functions.fund(), value=value_wei)

    # ---------------------------------------------------------------- events

    def commitments(self, round_: int) -> list[Commitment]:
        """The round's commitments in canonical peer order (addresses ascending)."""
        out = [_record(Commitment, e) for e in self._logs("Committed", {"round": round_})]
        return sorted(out, key=lambda c: int(c.member, 16))

    def votes(self, round_: int) -> list[Vote]:
        """The round's votes in chain order, late votes (`.late`, cast after finalization) included."""
        return [_record(Vote, e) for e in self._logs("Voted", {"round": round_})]

    def finalization(self, round_: int) -> Finalization | None:
        logs = self._logs("RoundFinalized", {"round": round_})
        return _record(Finalization, logs[0]) if logs else None

    def finalizations(self) -> list[Finalization]:
        return [f for f in (self.finalization(r) for r in range(1, self.current_round())) if f is not None]

    def failed_rounds(self) -> list[int]:
        return [e.args.round for e in self._logs("RoundFailed", None)]

    def claims(self, account: str | None = None) -> list[Claim]:
        filters = {"account": to_checksum_address(account)} if account else None
        return [_record(Claim, e) for e in self._logs("Claimed", filters)]

    def weight_updates(self, member: str | None = None) -> list[WeightUpdate]:
        filters = {"member": to_checksum_address(member)} if member else None
        return [_record(WeightUpdate, e) for e in self._logs("WeightUpdated", filters)]

    def admissions(self) -> list[tuple[str, bytes, int]]:
        """(member, enc key, initial weight) of every admission, in order."""
        return [(e.args.member, bytes(e.args.encKey), e.args.weight) for e in self._logs("MemberAdmitted", None)]

    @_rpc_guard
    def _logs(self, event: str, filters: dict[str, Any] | None) -> list[Any]:
        logs = getattr(self.contract.events, event)().get_logs(argument_filters=filters, from_block=self.deploy_block)
        return sorted(logs, key=lambda e: (e.blockNumber, e.logIndex))

    # ---------------------------------------------------------------- plumbing

    @_rpc_guard
    def _send(self, fn: Any, *, value: int = 0, return_raw: bool = False, gas: int | None = None,
              min_gas: int | None = None) -> Any:
        """Sign, send, wait for the receipt; a revert becomes its `ContractRevert` subclass.

        `gas` = a fixed gas limit, skipping estimation. For transactions that only become valid with time
        (a vote after the commit deadline, closeFailedRound after the vote deadline): estimation runs against
        the latest block, whose timestamp can be minutes old on a chain that mines on demand, while the block
        that will include the transaction carries the current time. A revert still surfaces as its custom
        error (replayed from the receipt's block).

        `min_gas` = estimate (so a revert is reported without spending gas) but never send less than this:
        a vote estimated as non-finalizing may be mined as the finalizing one when peers vote together."""
        if self.account is None:
            raise LedgerError("this binding is read-only: pass account= (a LocalAccount or private key)")
        with self._lock:
            if self._chain_id is None:
                self._chain_id = self.w3.eth.chain_id
            nonce = self.w3.eth.get_transaction_count(self.account.address, "pending")
            base = {"from": self.account.address, "nonce": nonce, "chainId": self._chain_id, "value": value}
            if gas is not None:
                base["gas"] = int(gas)
            try:
                tx = fn.build_transaction(base)  # estimates gas: a revert surfaces here with its custom error
            except (ContractLogicError, Web3RPCError) as exc:
                raise self._decode(exc) from None
            if gas is None:
                tx["gas"] = max(int(tx["gas"] * 1.25) + 20_000, int(min_gas or 0))
            signed = self.account.sign_transaction(tx)
            try:
                tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
            except Web3RPCError as exc:
                raise TransactionFailed(f"the node rejected the transaction: {exc}") from None
        try:
            raw = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.tx_timeout, poll_latency=0.05)
        except TimeExhausted:
            raise TransactionFailed(f"transaction {_hex(tx_hash)} not mined within {self.tx_timeout:.0f}s") from None
        if raw["status"] != 1:
            raise self._replay_failure(tx, raw)
        receipt = TxReceipt(_hex(tx_hash), raw["blockNumber"], raw["gasUsed"])
        return (receipt, raw) if return_raw else receipt

    def _replay_failure(self, tx: dict[str, Any], raw: Any) -> LedgerError:
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=raw["blockNumber"])
        except (ContractLogicError, Web3RPCError) as exc:
            return self._decode(exc)
        return TransactionFailed(f"transaction {_hex(raw['transactionHash'])} reverted (gas used {raw['gasUsed']})")

    def _decode(self, exc: Exception) -> LedgerError:
        data = getattr(exc, "data", None)
        if isinstance(data, dict):
            data = data.get("data")
        if isinstance(exc, ContractCustomError) and isinstance(data, str) and len(data) >= 10:
            entry = self._errors.get(data[2:10].lower())
            if entry is not None:
                name, names, types = entry
                values = abi_decode(types, bytes.fromhex(data[10:]))
                cls = ERRORS.get(name) or _revert(name)
                return cls(**{n: (to_checksum_address(v) if t == "address" else v)
                              for n, t, v in zip(names, types, values)})
        if isinstance(exc, ContractPanicError):
            return TransactionFailed(f"contract panicked: {exc.message}")
        if isinstance(exc, ContractLogicError):
            return TransactionFailed(f"contract reverted: {exc.message}")
        return TransactionFailed(str(exc))


def _hex(value: Any) -> str:
    return "0x" + bytes(value).hex()


def _record(cls: Any, log: Any) -> Any:
    """Decode a web3 event log into its record type."""
    return cls.from_event(log.args, log.blockNumber, _hex(log.transactionHash))


def _error_table(abi: Iterable[dict[str, Any]]) -> dict[str, tuple[str, list[str], list[str]]]:
    table = {}
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = [i["type"] for i in entry["inputs"]]
        selector = Web3.keccak(text=f"{entry['name']}({','.join(types)})")[:4].hex().removeprefix("0x")
        table[selector] = (entry["name"], [i["name"] for i in entry["inputs"]], types)
    return table
