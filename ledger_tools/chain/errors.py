"""Errors of the chain binding: every Solidity custom error surfaces as its own `ContractRevert` subclass
(`NotMember`, `AlreadyVoted`, ...) carrying the error's arguments; an unreachable RPC endpoint is `LedgerUnavailable`,
which is `Transient` (worth retrying), and nothing else is."""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from eth_abi import decode as abi_decode
from eth_utils import to_checksum_address
from web3 import Web3
from web3.exceptions import ContractCustomError, ContractLogicError, ContractPanicError

from ledger_tools.errors import LedgerToolsError, Transient


class LedgerError(LedgerToolsError):
    """Base of every error raised by the binding."""


class LedgerUnavailable(LedgerError, Transient):
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
InvalidMultiaddrLength = _revert("InvalidMultiaddrLength", "an announced multiaddr has 1 to 256 bytes, not {length}")
NothingToSweep = _revert("NothingToSweep", "round {round} has no unclaimed reward to sweep")
ClaimWindowOpen = _revert("ClaimWindowOpen", "the claim window of round {round} is open until {closesAt}")
NotDirectCall = _revert("NotDirectCall", "{caller} must commit from its own key, in a transaction sent to the ledger "
                        "(not through a contract or a delegated account)")

ERRORS: dict[str, type[ContractRevert]] = {
    cls.solidity_name: cls
    for cls in (
        NotMember, AlreadyMember, AlreadyAuditor, Unauthorized, InvalidParameter, RoundNotOpen, CommitClosed,
        AlreadyCommitted, VotingNotOpen, VotingClosed, AlreadyVoted, VoteOutOfOrder, AlreadySettled,
        ExcludedNotSorted, DigestMismatch,
        VoteDeadlineNotReached, LengthMismatch, NotFinalized, AlreadyClaimed, InvalidProof, PoolExceeded,
        TransferFailed, ReentrantCall, InvalidMultiaddrLength, NothingToSweep, ClaimWindowOpen, NotDirectCall,
    )
}


def _show(value: Any) -> str:
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


ErrorTable = dict[str, tuple[str, list[str], list[str]]]


def error_table(abi: Iterable[dict[str, Any]]) -> ErrorTable:
    """Selector (8 hex digits) → (error name, argument names, argument types) of every custom error in `abi`."""
    table = {}
    for entry in abi:
        if entry.get("type") != "error":
            continue
        types = [i["type"] for i in entry["inputs"]]
        selector = Web3.keccak(text=f"{entry['name']}({','.join(types)})")[:4].hex().removeprefix("0x")
        table[selector] = (entry["name"], [i["name"] for i in entry["inputs"]], types)
    return table


def decode_revert(exc: Exception, errors: ErrorTable) -> LedgerError:
    """The `LedgerError` a web3 revert stands for: the contract's custom error (by selector) or a TransactionFailed."""
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(exc, ContractCustomError) and isinstance(data, str) and len(data) >= 10:
        entry = errors.get(data[2:10].lower())
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
