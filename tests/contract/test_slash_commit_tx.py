"""The commitment-mismatch proof is the member's own signed commit transaction (contracts/SignedTransaction.sol):
every transaction type a node accepts (legacy before and after EIP-155, EIP-2930, EIP-1559) is read, a commit the
member signed but never sent proves the same, and every forgery - another chain, another contract, not a commit,
bytes that are no transaction, a bad signature - reverts with a named error. The ledger refuses a commitment that
is not such a transaction (a contract account forwarding it)."""
from __future__ import annotations

import pytest
import rlp
from eth_account import Account
from eth_utils import keccak
from web3 import Web3
from web3.exceptions import ContractCustomError

from devnet.compile import CONTRACTS_DIR, compile_source
from helpers.governance import Governed, proof, staked_federation
from ledger_tools.chain import NotMember
from ledger_tools.chain.governance import (
    InvalidSignature,
    MalformedTransaction,
    NotCommitCall,
    UnsupportedTransactionType,
    WrongChain,
    WrongFederation,
)
from ledger_tools.chain.signed_tx import SignedTx, commit_tx, fetch, from_raw

NO_DP = 2**64 - 1


@pytest.fixture
def staked(anvil, dev_keys) -> Governed:
    return staked_federation(anvil.rpc_url, dev_keys)


def _commit_data(g: Governed, round_: int, update_hash: bytes) -> str:
    return g.ledger.contract.encode_abi("commit", [round_, update_hash, "bafkreisigned", 10, NO_DP, 0])


def _signed_raw(g: Governed, key: str, *, kind: str, data: str, to: str | None = None, chain_id: int | None = None,
                nonce: int | None = None) -> bytes:
    """The raw bytes of a transaction signed by `key`: `kind` legacy-155, legacy-unprotected, 2930 or 1559."""
    w3, sender = g.ledger.w3, Account.from_key(key).address
    tx: dict = {"to": to or g.ledger.address, "data": data, "value": 0, "gas": 300_000,
                "nonce": w3.eth.get_transaction_count(sender) if nonce is None else nonce}
    if kind != "legacy-unprotected":
        tx["chainId"] = g.ledger.chain_id if chain_id is None else chain_id
    if kind == "1559":
        tx |= {"maxFeePerGas": 10**10, "maxPriorityFeePerGas": 10**9}
    else:
        tx["gasPrice"] = 10**10
    if kind == "2930":
        tx |= {"accessList": [], "type": 1}
    return bytes(Account.sign_transaction(tx, key).raw_transaction)


def _sign(g: Governed, key: str, **kw: object) -> SignedTx:
    return from_raw(_signed_raw(g, key, **kw))  # type: ignore[arg-type]


def _raw_signed(key: str, payload: bytes) -> SignedTx:
    """`payload` signed as a transaction hash by `key`: bytes a wallet would never sign, for the parser's errors."""
    sig = Account.unsafe_sign_hash(keccak(payload), key)
    return SignedTx(payload, sig.v - 27, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"))


@pytest.mark.parametrize("kind", ["legacy-155", "2930", "1559"])
def test_every_transaction_type_is_a_proof(staked: Governed, kind: str) -> None:
    """A commit sent as any transaction type is read back from the node and slashes a contradicting envelope."""
    cheat, g = staked.accounts[1], staked
    round_ = g.ledger.current_round()
    raw = _signed_raw(g, cheat.private_key, kind=kind, data=_commit_data(g, round_, b"\x0c" * 32))
    w3 = g.ledger.w3
    sent = w3.eth.send_raw_transaction(raw)
    assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1
    mined = commit_tx(g.ledger, cheat.address, round_)  # read back from the node by the Committed event
    assert mined == fetch(w3, sent.to_0x_hex()) == from_raw(raw)
    assert mined.commit_call() == (round_, b"\x0c" * 32) and mined.signer() == cheat.address
    r = g.gov_as(g.outsiders[1]).slash_commit_mismatch(proof(g, cheat, round_, b"\x0e" * 32), mined)
    assert r.member == cheat.address and r.removed


def test_signed_unsent_commit_is_a_proof(staked: Governed) -> None:
    """Signing a commit of one update and gossiping another is the offence, mined or not (a node may have dropped
    the transaction); a pre-EIP-155 transaction, valid on every chain, binds its signer here too."""
    g, round_ = staked, staked.ledger.current_round()
    cheat, other = g.accounts[1], g.accounts[2]
    unsent = _sign(g, cheat.private_key, kind="1559", data=_commit_data(g, round_, b"\x0c" * 32), nonce=10**6)
    r = g.gov_as(g.outsiders[1]).slash_commit_mismatch(proof(g, cheat, round_, b"\x0e" * 32), unsent)
    assert r.member == cheat.address
    unprotected = _sign(g, other.private_key, kind="legacy-unprotected", data=_commit_data(g, round_, b"\x0c" * 32))
    r = g.gov_as(g.outsiders[1]).slash_commit_mismatch(proof(g, other, round_, b"\x0e" * 32), unprotected)
    assert r.member == other.address
    stranger = g.outsiders[2]  # signs both, but is no member and has no stake: nothing to slash
    forged = _sign(g, stranger.private_key, kind="1559", data=_commit_data(g, round_, b"\x0c" * 32))
    with pytest.raises(NotMember):
        g.gov_as(g.outsiders[1]).slash_commit_mismatch(proof(g, stranger, round_, b"\x0e" * 32), forged)


def test_hostile_commit_transactions(staked: Governed) -> None:
    """Every forged or foreign commit transaction reverts with its named error, and nobody is slashed."""
    g, round_ = staked, staked.ledger.current_round()
    cheat = g.accounts[1]
    key = cheat.private_key
    env = proof(g, cheat, round_, b"\x0e" * 32)
    commit = _commit_data(g, round_, b"\x0c" * 32)
    good = _sign(g, key, kind="1559", data=commit)
    vote = g.ledger.contract.encode_abi("vote", [round_, b"\x01" * 32, b"\x02" * 32, "bafkrei", b"\x03" * 32,
                                                 "bafkrei", []])
    cases = [
        (_sign(g, key, kind="1559", data=commit, chain_id=1), WrongChain),
        (_sign(g, key, kind="legacy-155", data=commit, chain_id=5), WrongChain),
        (_sign(g, key, kind="1559", data=commit, to=g.governor.address), WrongFederation),
        (_sign(g, key, kind="1559", data=vote), NotCommitCall),
        (_sign(g, key, kind="1559", data="0x"), NotCommitCall),
        (_sign(g, key, kind="1559", data=commit[:2 + 2 * 67]), NotCommitCall),
        (SignedTx(good.payload[:-1], good.y_parity, good.r, good.s), InvalidSignature),
        (SignedTx(good.payload, 1 - good.y_parity, good.r, good.s), InvalidSignature),
        (SignedTx(good.payload, 2, good.r, good.s), InvalidSignature),
        (_sign(g, g.accounts[2].private_key, kind="1559", data=commit), InvalidSignature),
        (_raw_signed(key, b"\x05" + rlp.encode([1, 2])), UnsupportedTransactionType),
        (_raw_signed(key, b"\x19" + b"\x00" * 40), UnsupportedTransactionType),
        (_raw_signed(key, b"\x02" + rlp.encode([1, 2, 3])), MalformedTransaction),
        (_raw_signed(key, b"\x02\xf9\xff\xff" + b"\x00" * 10), MalformedTransaction),
        (_raw_signed(key, b"\x02" + rlp.encode([1, 2, 3]) + b"\x00"), MalformedTransaction),
        (_raw_signed(key, rlp.encode([1, 2, 3, b"\x01" * 20, 0, [], 1, 0, 0])), MalformedTransaction),
    ]
    slasher = g.gov_as(g.outsiders[1])
    for tx, error in cases:
        with pytest.raises(error):
            slasher.slash_commit_mismatch(env, tx)
    assert cheat.address in g.ledger.members()
    slasher.slash_commit_mismatch(env, good)  # the same envelope with the genuine commit does slash
    assert cheat.address not in g.ledger.members()


def test_commit_through_a_contract_is_refused(staked: Governed) -> None:
    """A member account with code (a contract wallet, or an EIP-7702 delegation) cannot commit: its commitment would
    be no transaction it signed, so nobody could prove a mismatch with its envelopes."""
    g = staked
    artifact = compile_source(CONTRACTS_DIR / "test" / "CommitForwarder.sol")["CommitForwarder"]
    w3, deployer = g.ledger.w3, g.outsiders[2]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    tx = factory.constructor().build_transaction(
        {"from": deployer.address, "nonce": w3.eth.get_transaction_count(deployer.address)})
    signed = w3.eth.account.sign_transaction(tx, deployer.private_key)
    address = w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(signed.raw_transaction))[
        "contractAddress"]
    forwarder = w3.eth.contract(address=address, abi=artifact.abi)
    with pytest.raises(ContractCustomError) as refused:
        forwarder.functions.forward(g.ledger.address, g.ledger.current_round(), b"\x0c" * 32).call(
            {"from": deployer.address})
    selector = Web3.keccak(text="NotMember(address)")[:4]
    assert bytes.fromhex(str(refused.value.data)[2:10]) == selector  # not a member yet: refused as such
    _admit_contract(g, address)
    with pytest.raises(ContractCustomError) as refused:
        forwarder.functions.forward(g.ledger.address, g.ledger.current_round() + 1, b"\x0c" * 32).call(
            {"from": deployer.address})
    assert bytes.fromhex(str(refused.value.data)[2:10]) == Web3.keccak(text="NotDirectCall(address)")[:4]


def _admit_contract(g: Governed, address: str) -> None:
    """Admission by member vote; the governor requires the candidate's stake, which a contract without a stake
    function cannot pay - so this federation's minimum stake is first voted down to 0."""
    from ledger_tools.chain.governance import GovParam

    g.pass_proposal(g.gov[0].propose_parameter(GovParam.MIN_STAKE, 0).proposal_id)
    g.pass_proposal(g.gov[0].propose_admit(address, b"\x43" * 32, 1_000_000, 0).proposal_id)
    assert address in g.ledger.members()
