"""Typed binding of contracts/FederationGovernor.sol: member governance, stake and slashing of one federation.

Transactions go through the ledger binding's signer (`FederationLedger._send`: nonce, gas, receipt check), with
an error table holding the governor's custom errors *and* the ledger's (a ledger revert bubbles up through the
governor's calls). Every governor error surfaces as its own `ContractRevert` subclass below.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_utils import to_checksum_address
from web3.exceptions import ContractLogicError, Web3RPCError
from web3.logs import DISCARD

from consensus.commitment import bytes32 as _b32
from ledger_tools.chain.binding import ARTIFACT_PATH as LEDGER_ARTIFACT_PATH
from ledger_tools.chain.binding import FederationLedger, _rpc_guard
from ledger_tools.chain.errors import ERRORS, ContractRevert, LedgerError, _revert, decode_revert
from ledger_tools.chain.records import RoundParamsUpdate, TxReceipt
from ledger_tools.chain.signed_tx import SignedTx

#: The governor's `SignedEnvelope` struct as a tuple: (federation, chain id, round, sender, update hash, cid hash,
#: rest hash, r, s, v), built by `peer.net.envelope_proof.EnvelopeProof.as_abi()`.
SignedEnvelope = tuple[str, int, int, str, bytes, bytes, bytes, bytes, bytes, int]
GOVERNOR_ARTIFACT_PATH = Path(__file__).resolve().parents[2] / "contracts" / "build" / "FederationGovernor.json"


class ProposalKind(IntEnum):
    ADMIT = 1
    REMOVE = 2
    REGISTER_AUDITOR = 3
    REMOVE_AUDITOR = 4
    PARAMETER = 5
    ROUND_PARAMS = 6  # the ledger's round parameters (rule, f, quorum, periods, reward), from its next round


class GovParam(IntEnum):
    MIN_STAKE = 1
    PASS_BPS = 2
    QUORUM_BPS = 3
    VOTING_PERIOD = 4
    EXECUTION_DELAY = 5
    EXECUTION_WINDOW = 6
    WITHDRAW_DELAY = 7
    REPORTER_SHARE_BPS = 8
    SLASH_BPS = 9


class ProposalState(IntEnum):
    NONE = 0
    ACTIVE = 1
    DEFEATED = 2
    QUEUED = 3
    READY = 4
    EXPIRED = 5
    EXECUTED = 6


@dataclass(frozen=True)
class GovParams:
    """Governance parameters (see IFederationGovernor.GovParams for the bounds)."""

    min_stake: int = 10**18
    pass_bps: int = 5000
    quorum_bps: int = 5000
    voting_period: int = 3600
    execution_delay: int = 600
    execution_window: int = 7 * 86400
    withdraw_delay: int = 7 * 86400
    reporter_share_bps: int = 1000
    slash_bps: int = 10_000

    def as_tuple(self) -> tuple[int, ...]:
        return (self.min_stake, self.pass_bps, self.quorum_bps, self.voting_period, self.execution_delay,
                self.execution_window, self.withdraw_delay, self.reporter_share_bps, self.slash_bps)


@dataclass(frozen=True)
class Proposal:
    id: int
    kind: ProposalKind
    proposer: str
    account: str
    enc_key: bytes
    weight: int
    param: int
    value: int
    for_weight: int
    against_weight: int
    total_weight: int
    vote_end: int
    executed: bool
    state: ProposalState


@dataclass(frozen=True)
class StakeInfo:
    amount: int
    unlock_at: int  # 0 = bonded (member or candidate), else the time it can be withdrawn
    bonded: bool


@dataclass(frozen=True)
class ProposalReceipt(TxReceipt):
    proposal_id: int


@dataclass(frozen=True)
class SlashReceipt(TxReceipt):
    member: str
    round: int
    amount: int
    reward: int
    removed: bool


_T = "{account} has staked {staked} wei (not leaving); admission needs {required}"
GOVERNOR_ERRORS: dict[str, type[ContractRevert]] = {
    name: ERRORS.get(name) or _revert(name, template)
    for name, template in {
        "NotMember": "", "AlreadyMember": "", "TransferFailed": "", "ReentrantCall": "",
        "InvalidProposal": "invalid proposal argument {name}",
        "RuleInfeasible": "{rule} cannot tolerate f={f} with {n} members",
        "UnknownProposal": "no proposal {id}",
        "VotingEnded": "the vote on proposal {id} ended at {voteEnd}",
        "AlreadyVotedOnProposal": "{voter} already voted on proposal {id}",
        "ProposalNotExecutable": "proposal {id} is not executable (state {state})",
        "ProposalNotReady": "proposal {id} can be executed from {readyAt} on",
        "InsufficientStake": _T,
        "WrongFederation": "the envelope or commit transaction is for federation {federation}, not this one",
        "WrongChain": "the envelope or commit transaction is for chain {chainId}, not this one",
        "InvalidSignature": "the envelope or commit transaction was not signed by {sender}",
        "NotEquivocation": "the envelopes are not an equivocation (same update, sender or round differ)",
        "AlreadySlashed": "{member} was already slashed for round {round}",
        "NotCommitted": "the commit transaction {member} signed is not for round {round}",
        "NotCommitCall": "the signed transaction is not a commit to this federation's ledger",
        "MalformedTransaction": "the signed transaction is not RLP a node accepts (at byte {at})",
        "UnsupportedTransactionType": "transaction type {txType} is not one a commit proof reads (0-4)",
        "CommitMatches": "{member}'s envelope for round {round} names the update it committed",
        "NothingToWithdraw": "{account} has no stake to withdraw",
        "WithdrawLocked": "the stake of {account} is locked until {unlockAt} (0: call leave first)",
        "UnknownRule": "unknown rule {rule}",
    }.items()
}
AlreadyVotedOnProposal = GOVERNOR_ERRORS["AlreadyVotedOnProposal"]
AlreadySlashed = GOVERNOR_ERRORS["AlreadySlashed"]
InsufficientStake = GOVERNOR_ERRORS["InsufficientStake"]
InvalidProposal = GOVERNOR_ERRORS["InvalidProposal"]
InvalidSignature = GOVERNOR_ERRORS["InvalidSignature"]
NotCommitted = GOVERNOR_ERRORS["NotCommitted"]
CommitMatches = GOVERNOR_ERRORS["CommitMatches"]
MalformedTransaction = GOVERNOR_ERRORS["MalformedTransaction"]
NotCommitCall = GOVERNOR_ERRORS["NotCommitCall"]
UnsupportedTransactionType = GOVERNOR_ERRORS["UnsupportedTransactionType"]
NotEquivocation = GOVERNOR_ERRORS["NotEquivocation"]
NothingToWithdraw = GOVERNOR_ERRORS["NothingToWithdraw"]
ProposalNotExecutable = GOVERNOR_ERRORS["ProposalNotExecutable"]
ProposalNotReady = GOVERNOR_ERRORS["ProposalNotReady"]
RuleInfeasible = GOVERNOR_ERRORS["RuleInfeasible"]
UnknownProposal = GOVERNOR_ERRORS["UnknownProposal"]
UnknownRule = GOVERNOR_ERRORS["UnknownRule"]
VotingEnded = GOVERNOR_ERRORS["VotingEnded"]
WithdrawLocked = GOVERNOR_ERRORS["WithdrawLocked"]
WrongChain = GOVERNOR_ERRORS["WrongChain"]
WrongFederation = GOVERNOR_ERRORS["WrongFederation"]


def _abi(path: Path, name: str) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())["contracts"][name]
    except OSError as exc:
        raise LedgerError(f"contract artifact missing at {path}; run `python -m devnet.compile`") from exc


def _tx_abi(governor_abi: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The governor's ABI plus the ledger's errors it does not declare itself (ledger reverts bubble up)."""
    names = {e["name"] for e in governor_abi if e.get("type") == "error"}
    ledger_errors = [e for e in _abi(LEDGER_ARTIFACT_PATH, "FederationLedger")["abi"]
                     if e.get("type") == "error" and e["name"] not in names]
    return governor_abi + ledger_errors


class FederationGovernor:
    """Binding of one deployed FederationGovernor; `account` (LocalAccount or private key) signs."""

    def __init__(self, rpc_url: str, address: str, account: LocalAccount | str | None = None, *,
                 abi: list[dict[str, Any]] | None = None, deploy_block: int = 0, w3: Any = None) -> None:
        self.abi = abi or _abi(GOVERNOR_ARTIFACT_PATH, "FederationGovernor")["abi"]
        # the ledger binding's signer, pointed at the governor: one place for nonce, gas and revert decoding
        self._tx = FederationLedger(rpc_url, address, account, abi=_tx_abi(self.abi), deploy_block=deploy_block,
                                    w3=w3)
        self.rpc_url, self.address, self.w3 = rpc_url, self._tx.address, self._tx.w3
        self.account = self._tx.account
        self.deploy_block = deploy_block
        self.contract = self.w3.eth.contract(address=self.address, abi=self.abi)

    def with_account(self, account: LocalAccount | str) -> FederationGovernor:
        return FederationGovernor(self.rpc_url, self.address, account, abi=self.abi, deploy_block=self.deploy_block,
                                  w3=self.w3)

    @classmethod
    def deploy(cls, rpc_url: str, deployer: LocalAccount | str, ledger: str, params: GovParams, *,
               abi: list[dict[str, Any]], bytecode: str) -> FederationGovernor:
        """Deploy a governor of `ledger` (which must then `transferOwnership` to it)."""
        tmp = cls(rpc_url, "0x" + "00" * 20, deployer, abi=abi)
        ctor = tmp.w3.eth.contract(abi=abi, bytecode=bytecode).constructor(
            to_checksum_address(ledger), params.as_tuple())
        receipt = tmp._send(ctor)
        address = tmp.w3.eth.get_transaction_receipt(receipt.tx_hash)["contractAddress"]
        return cls(rpc_url, address, tmp.account, abi=abi, deploy_block=receipt.block_number, w3=tmp.w3)

    # ---------------------------------------------------------------- reads

    @_rpc_guard
    def ledger_address(self) -> str:
        return self.contract.functions.ledger().call()

    @_rpc_guard
    def params(self) -> GovParams:
        return GovParams(*self.contract.functions.params().call())

    @_rpc_guard
    def proposal_count(self) -> int:
        return self.contract.functions.proposalCount().call()

    @_rpc_guard
    def proposal(self, proposal_id: int) -> Proposal:
        try:
            v = self.contract.functions.proposal(proposal_id).call()
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._decode(exc) from None
        state = ProposalState(self.contract.functions.proposalState(proposal_id).call())
        return Proposal(proposal_id, ProposalKind(v[0]), v[1], v[2], bytes(v[3]), v[4], v[5], v[6], v[7], v[8], v[9],
                        v[10], v[11], state)

    def proposals(self) -> list[Proposal]:
        return [self.proposal(i) for i in range(1, self.proposal_count() + 1)]

    @_rpc_guard
    def state(self, proposal_id: int) -> ProposalState:
        return ProposalState(self.contract.functions.proposalState(proposal_id).call())

    @_rpc_guard
    def has_voted(self, proposal_id: int, voter: str) -> bool:
        return self.contract.functions.hasVoted(proposal_id, to_checksum_address(voter)).call()

    @_rpc_guard
    def stake_of(self, account: str) -> StakeInfo:
        return StakeInfo(*self.contract.functions.stakeOf(to_checksum_address(account)).call())

    @_rpc_guard
    def slashed_pool(self) -> int:
        return self.contract.functions.slashedPool().call()

    @_rpc_guard
    def round_params_proposal(self, proposal_id: int) -> RoundParamsUpdate:
        """The ledger round parameters a ROUND_PARAMS proposal sets."""
        try:
            return RoundParamsUpdate(*self.contract.functions.roundParamsProposal(proposal_id).call())
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._decode(exc) from None

    @_rpc_guard
    def min_valid_updates(self, rule: str, f: int) -> int:
        try:
            return self.contract.functions.minValidUpdates(rule, f).call()
        except (ContractLogicError, Web3RPCError) as exc:
            raise self._decode(exc) from None

    # ---------------------------------------------------------------- governance

    def propose_admit(self, account: str, enc_key: bytes, weight: int, stake_wei: int) -> ProposalReceipt:
        return self._propose(self.contract.functions.proposeAdmit(to_checksum_address(account), _b32(enc_key),
                                                                  weight, stake_wei))

    def propose_remove(self, account: str) -> ProposalReceipt:
        return self._propose(self.contract.functions.proposeRemove(to_checksum_address(account)))

    def propose_register_auditor(self, account: str, enc_key: bytes) -> ProposalReceipt:
        return self._propose(self.contract.functions.proposeRegisterAuditor(to_checksum_address(account),
                                                                            _b32(enc_key)))

    def propose_remove_auditor(self, account: str) -> ProposalReceipt:
        return self._propose(self.contract.functions.proposeRemoveAuditor(to_checksum_address(account)))

    def propose_parameter(self, param: GovParam | int, value: int) -> ProposalReceipt:
        return self._propose(self.contract.functions.proposeParameter(int(param), value))

    def propose_round_params(self, update: RoundParamsUpdate) -> ProposalReceipt:
        """Propose the ledger's round parameters; once executed they apply from the ledger's next round."""
        return self._propose(self.contract.functions.proposeRoundParams(update.as_tuple()))

    def vote(self, proposal_id: int, support: bool = True) -> TxReceipt:
        return self._send(self.contract.functions.castVote(proposal_id, support))

    def execute(self, proposal_id: int) -> TxReceipt:
        return self._send(self.contract.functions.execute(proposal_id))

    # ---------------------------------------------------------------- stake and slashing

    def stake(self, value_wei: int) -> TxReceipt:
        return self._send(self.contract.functions.stake(), value=value_wei)

    def leave(self) -> TxReceipt:
        return self._send(self.contract.functions.leave())

    def withdraw(self) -> TxReceipt:
        return self._send(self.contract.functions.withdraw())

    def slash_equivocation(self, proof_a: SignedEnvelope, proof_b: SignedEnvelope) -> SlashReceipt:
        """Slash from two envelopes' signed headers (`peer.net.envelope_proof.EnvelopeProof.as_abi()`)."""
        return self._slash(self.contract.functions.slashEquivocation(proof_a, proof_b))

    def slash_commit_mismatch(self, proof: SignedEnvelope, commit_tx: SignedTx) -> SlashReceipt:
        """Slash from one envelope whose update hash is not the one its sender committed for that round, as the
        sender's own signed commit transaction (`ledger_tools.chain.signed_tx`) shows."""
        return self._slash(self.contract.functions.slashCommitMismatch(proof, commit_tx.as_abi()))

    def _slash(self, fn: Any) -> SlashReceipt:
        receipt, raw = self._send(fn, return_raw=True)
        ev = self.contract.events.Slashed().process_receipt(raw, errors=DISCARD)[0]["args"]
        return SlashReceipt(receipt.tx_hash, receipt.block_number, receipt.gas_used, ev["member"], ev["round"],
                            ev["amount"], ev["reward"], ev["removed"])

    def forward_slashed(self) -> TxReceipt:
        return self._send(self.contract.functions.forwardSlashed())

    # ---------------------------------------------------------------- plumbing

    def _propose(self, fn: Any) -> ProposalReceipt:
        receipt, raw = self._send(fn, return_raw=True)
        ev = self.contract.events.ProposalCreated().process_receipt(raw, errors=DISCARD)[0]["args"]
        return ProposalReceipt(receipt.tx_hash, receipt.block_number, receipt.gas_used, ev["id"])

    def _send(self, fn: Any, **kwargs: Any) -> Any:
        try:
            return self._tx._send(fn, **kwargs)
        except ContractRevert as exc:
            cls = GOVERNOR_ERRORS.get(exc.solidity_name)
            if cls is None or isinstance(exc, cls):
                raise
            raise cls(**exc.args_by_name) from None

    def _decode(self, exc: Exception) -> LedgerError:
        err = decode_revert(exc, self._tx._errors)
        if isinstance(err, ContractRevert) and err.solidity_name in GOVERNOR_ERRORS:
            cls = GOVERNOR_ERRORS[err.solidity_name]
            if not isinstance(err, cls):
                return cls(**err.args_by_name)
        return err
