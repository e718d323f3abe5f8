"""Typed Python binding of contracts/FederationLedger.sol over web3 8.

Callers never touch ABIs: reads return the records of `ledger_tools.chain.records`, transactions are signed
locally with eth-account (nonce from the node's pending count, gas estimated, receipt status checked) and return
a `TxReceipt` with the gas used, and every Solidity custom error surfaces as its `ContractRevert` subclass.
"""
from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import requests
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractLogicError, ProviderConnectionError, Web3RPCError
from web3.logs import DISCARD as _DISCARD

from consensus.commitment import bytes32 as _b32
from consensus.digest import vote_digest
from consensus.reputation import WEIGHT_ONE
from ledger_tools.chain import transactions as txs
from ledger_tools.chain.errors import LedgerError, LedgerUnavailable, TransactionFailed, decode_revert, error_table
from ledger_tools.chain.events import LedgerEvents, _hex
from ledger_tools.chain.records import (
    NO_DP,
    AuditorInfo,
    AuditorInit,
    ClaimReceipt,
    GlobalModel,
    LedgerParams,
    MemberInfo,
    MemberInit,
    Phase,
    RoundInfo,
    RoundParamsUpdate,
    RoundStatus,
    SweepReceipt,
    TxReceipt,
    VoteReceipt,
)

ARTIFACT_PATH = Path(__file__).resolve().parents[2] / "contracts" / "build" / "FederationLedger.json"

T = TypeVar("T")


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


class FederationLedger(LedgerEvents):
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
        self.w3 = w3 or Web3(txs.http_provider(rpc_url))
        self.address = to_checksum_address(address)
        self.abi = abi or _load_artifact()["abi"]
        self.contract = self.w3.eth.contract(address=self.address, abi=self.abi)
        self.account: LocalAccount | None = Account.from_key(account) if isinstance(account, str) else account
        self.deploy_block = deploy_block
        self.tx_timeout = tx_timeout
        self._lock = threading.Lock()
        self._errors = error_table(self.abi)
        self._params: dict[int, LedgerParams] = {}  # by round, once the round opened (they never change then)
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
    def deploy(cls, rpc_url: str, deployer: LocalAccount | str, params: LedgerParams, members: Sequence[MemberInit],
               auditors: Sequence[AuditorInit] = (), *, funding_wei: int = 0,
               abi: list[dict[str, Any]] | None = None, bytecode: str | None = None) -> "FederationLedger":
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

    def params(self) -> LedgerParams:
        """The open round's parameters (round parameters can change from one round to the next)."""
        return self.params_for_round(self.current_round())

    @_rpc_guard
    def params_for_round(self, round_: int) -> LedgerParams:
        """The parameters round `round_` runs under (for a round not open yet: as set now), cached once it opened."""
        if round_ in self._params:
            return self._params[round_]
        opened = round_ <= self.current_round()  # read first: a round's parameters are final once it opened
        p = self.contract.functions.paramsForRound(round_).call()
        params = LedgerParams(*p[:7], bytes(p[7]), bytes(p[8]), *p[9:])
        if opened:
            self._params[round_] = params
        return params

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
        status, start, commit_dl, vote_dl, count, unclaimed, _root_high, _prefix, members = (
            self.contract.functions.roundInfo(round_).call())
        status = RoundStatus(status)
        aggregate_hash = rewards_root = None
        if status == RoundStatus.FINALIZED:
            fin = self.finalization(round_)
            if fin is not None:
                aggregate_hash, rewards_root = fin.aggregate_hash, fin.rewards_root
        return RoundInfo(round_, status, start, commit_dl, vote_dl, count, unclaimed, rewards_root, aggregate_hash,
                         members)

    def phase(self, round_: int | None = None) -> Phase:
        """Phase of `round_` (default: the open round) at the latest block's time, by the contract's rule: the
        commit phase ends at its deadline or once every member counting in the round committed (the contract
        has no phase view: it is derived from `roundInfo`, saving runtime code)."""
        return self.round_info(self.current_round() if round_ is None else round_).phase_at(self.chain_time())

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

    def round_pool(self, round_: int) -> int:
        """Round `round_`'s reward pool, fixed on chain when it opened (its `RoundOpened` event): the amount its
        reward tree splits. No transfer after the round opened changes it, so every peer votes the same tree."""
        logs = self._logs("RoundOpened", {"round": round_})
        if not logs:
            raise LedgerError(f"round {round_} has not opened (no RoundOpened event)")
        return int(logs[0].args["pool"])

    @_rpc_guard
    def claim_window(self) -> int:
        """Seconds after a round's vote deadline during which its rewards cannot be swept (CLAIM_WINDOW)."""
        return self.contract.functions.CLAIM_WINDOW().call()

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
        """Vote for (aggregate, rewards root, excluded set); `excluded` must be sorted ascending; the digest is
        computed when not given. `.finalized`: this vote finalized the round. A vote for a round already finalized
        (until its vote deadline) is a late vote (`.late`): not tallied, it settles this member's reputation for
        that round. `gas`: a fixed gas limit instead of an estimate (see `_send`)."""
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

    @_rpc_guard
    def estimate_claim(self, rounds: Sequence[int], amounts: Sequence[int], proofs: Sequence[Sequence[bytes]]) -> int:
        """Gas `claim` would use now, sending nothing; a claim the contract would reject raises its error."""
        if self.account is None:
            raise LedgerError("this binding is read-only: pass account= (a LocalAccount or private key)")
        fn = self.contract.functions.claim(list(rounds), list(amounts), [[_b32(p) for p in proof] for proof in proofs])
        try:
            return int(fn.estimate_gas({"from": self.account.address}))
        except (ContractLogicError, Web3RPCError) as exc:
            raise decode_revert(exc, self._errors) from None

    def sweep(self, round_: int) -> SweepReceipt:
        """Return finalized `round_`'s unclaimed reward to the pool (anyone; after its claim window)."""
        receipt, raw = self._send(self.contract.functions.sweep(round_), return_raw=True)
        swept = self.contract.events.Swept().process_receipt(raw, errors=_DISCARD)
        return SweepReceipt(receipt.tx_hash, receipt.block_number, receipt.gas_used,
                            int(swept[0]["args"]["amount"]) if swept else 0)

    def admit_member(self, address: str, enc_key: bytes, weight: int = WEIGHT_ONE) -> TxReceipt:
        """Owner only: admit a new member."""
        return self._send(self.contract.functions.admitMember(to_checksum_address(address), _b32(enc_key), weight))

    def register_auditor(self, address: str, enc_key: bytes) -> TxReceipt:
        """Owner only: register an auditor."""
        return self._send(self.contract.functions.registerAuditor(to_checksum_address(address), _b32(enc_key)))

    def set_round_params(self, update: RoundParamsUpdate) -> TxReceipt:
        """Owner only (the governor, on a passed proposal): round parameters from the next round on."""
        return self._send(self.contract.functions.setRoundParams(update.as_tuple()))

    def fund(self, value_wei: int) -> TxReceipt:
        """Add `value_wei` to the reward pool."""
        return self._send(self.contract.functions.fund(), value=value_wei)

    def announce(self, multiaddr: str) -> TxReceipt:
        """Member only: publish the gossip multiaddr other members dial (`MemberAnnounced`; the latest counts)."""
        return self._send(self.contract.functions.announce(multiaddr))

    # ---------------------------------------------------------------- plumbing

    @_rpc_guard
    def _logs(self, event: str, filters: dict[str, Any] | None) -> list[Any]:
        logs = getattr(self.contract.events, event)().get_logs(argument_filters=filters, from_block=self.deploy_block)
        return sorted(logs, key=lambda e: (e.blockNumber, e.logIndex))

    @_rpc_guard
    def _send(self, fn: Any, *, value: int = 0, return_raw: bool = False, gas: int | None = None,
              min_gas: int | None = None) -> Any:
        """Sign, send, wait for the receipt; a revert becomes its `ContractRevert` subclass.

        `gas` = a fixed gas limit, skipping estimation. For transactions that only become valid with time (a vote
        after the commit deadline, closeFailedRound after the vote deadline): estimation runs against the latest
        block, whose timestamp can be minutes old on a chain that mines on demand, while the including block
        carries the current time. A revert still surfaces as its custom error (replayed from the receipt's block).

        `min_gas` = estimate (so a revert is reported without spending gas) but never send less than this:
        a vote estimated as non-finalizing may be mined as the finalizing one when peers vote together."""
        if self.account is None:
            raise LedgerError("this binding is read-only: pass account= (a LocalAccount or private key)")
        with self._lock:
            if self._chain_id is None:
                self._chain_id = self.w3.eth.chain_id
            base = {"from": self.account.address, "chainId": self._chain_id, "value": value}
            if gas is not None:
                base["gas"] = int(gas)
            # nonce, fees and estimate in one batched request; a revert surfaces here with its custom error
            tx = txs.build(self.w3, fn, base, estimate=gas is None, errors=self._errors)
            if gas is None:
                tx["gas"] = max(int(tx["gas"] * 1.25) + 20_000, int(min_gas or 0))
            signed = self.account.sign_transaction(tx)
            tx_hash = signed.hash
            raw = txs.send(self.w3, signed.raw_transaction, tx_hash)  # the receipt, where the node waits for it
        raw = raw or txs.receipt(self.w3, tx_hash, self.tx_timeout)
        if raw["status"] != 1:
            raise self._replay_failure(tx, raw)
        receipt = TxReceipt(_hex(tx_hash), raw["blockNumber"], raw["gasUsed"])
        return (receipt, raw) if return_raw else receipt

    def _replay_failure(self, tx: dict[str, Any], raw: Any) -> LedgerError:
        call = {k: tx[k] for k in ("from", "to", "data", "value") if k in tx}
        try:
            self.w3.eth.call(call, block_identifier=raw["blockNumber"])
        except (ContractLogicError, Web3RPCError) as exc:
            return decode_revert(exc, self._errors)
        return TransactionFailed(f"transaction {_hex(raw['transactionHash'])} reverted (gas used {raw['gasUsed']})")
