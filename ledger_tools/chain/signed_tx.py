"""A member's own signed `commit` transaction, as the proof of what it committed.

The ledger takes a commitment only as the top-level call of a transaction the member's key signed (`NotDirectCall`
otherwise), and stores no update hash: the transaction itself - kept by every node, fetched by the hash in the
`Committed` event - is what `FederationGovernor.slashCommitMismatch` checks an envelope against. A `SignedTx` is
that transaction split into its signing payload (the bytes whose keccak256 the signature covers) and signature,
the form the contract recovers the signer from (contracts/SignedTransaction.sol, docs/interfaces.md).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import rlp
from eth_account import Account
from eth_utils import keccak, to_checksum_address

MAX_PAYLOAD = 64 * 1024  # a commit transaction is ~0.4 kB; anything far larger is not one


class SignedTxError(ValueError):
    """Bytes that are not a signed transaction of a type the commit proof reads (legacy, types 1-4)."""


@dataclass(frozen=True)
class SignedTx:
    """A transaction's signing payload and signature (y parity, r, s)."""

    payload: bytes
    y_parity: int
    r: bytes
    s: bytes

    def as_abi(self) -> tuple[bytes, int, bytes, bytes]:
        return (self.payload, self.y_parity, self.r, self.s)

    def signer(self) -> str:
        """The address that signed the payload (checked here as the contract will, before spending gas)."""
        try:
            return to_checksum_address(Account._recover_hash(keccak(self.payload),
                                                              vrs=(self.y_parity, int.from_bytes(self.r, "big"),
                                                                   int.from_bytes(self.s, "big"))))
        except Exception as exc:  # noqa: BLE001 - eth-keys raises several types for a bad signature
            raise SignedTxError(f"the transaction signature does not recover: {exc}") from exc

    def commit_call(self) -> tuple[int, bytes]:
        """(round, update hash) of the commit call in the payload's data (no selector check: the contract's)."""
        data = _data(self.payload)
        if len(data) < 68:
            raise SignedTxError("the transaction's call data is too short for a commit")
        return int.from_bytes(data[4:36], "big"), data[36:68]

    def to_json(self) -> dict[str, Any]:
        return {"payload": "0x" + self.payload.hex(), "y_parity": self.y_parity, "r": "0x" + self.r.hex(),
                "s": "0x" + self.s.hex()}

    @classmethod
    def from_json(cls, doc: Any) -> SignedTx:
        try:
            payload = bytes.fromhex(doc["payload"].removeprefix("0x"))
            r, s = (bytes.fromhex(doc[k].removeprefix("0x")) for k in ("r", "s"))
            y = doc["y_parity"]
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            raise SignedTxError(f"a signed transaction needs hex payload, r, s and y_parity 0/1: {exc}") from exc
        if not isinstance(y, int) or y not in (0, 1) or len(r) != 32 or len(s) != 32:
            raise SignedTxError("y_parity must be 0 or 1, r and s 32 bytes each")
        if not payload or len(payload) > MAX_PAYLOAD:
            raise SignedTxError(f"the payload must hold 1 to {MAX_PAYLOAD} bytes")
        return cls(payload, y, r, s)


def _decode(blob: bytes) -> list[Any]:
    try:
        items = rlp.decode(blob)
    except rlp.exceptions.DecodingError as exc:
        raise SignedTxError(f"not RLP: {exc}") from exc
    if not isinstance(items, list):
        raise SignedTxError("not an RLP list")
    return items


def _data(payload: bytes) -> bytes:
    """The call data of a signing payload (field `to` + 2: index 5 legacy, 6 type 1, 7 types 2-4)."""
    typed = payload[:1] in (b"\x01", b"\x02", b"\x03", b"\x04")
    items = _decode(payload[1:] if typed else payload)
    index = 5 if not typed else 6 if payload[0] == 1 else 7
    if len(items) <= index or not isinstance(items[index], bytes):
        raise SignedTxError("the transaction has no call data field")
    return items[index]


def from_raw(raw: bytes) -> SignedTx:
    """Split a signed raw transaction (`eth_getRawTransactionByHash`) into signing payload and signature."""
    if len(raw) > MAX_PAYLOAD + 200:
        raise SignedTxError("larger than any commit transaction")
    if raw[:1] in (b"\x01", b"\x02", b"\x03", b"\x04"):
        items = _decode(raw[1:])
        if len(items) < 4:
            raise SignedTxError("too few fields for a typed transaction")
        y, r, s = (int.from_bytes(v, "big") for v in items[-3:])
        payload = raw[:1] + rlp.encode(items[:-3])
    elif raw[:1] >= b"\xc0":
        items = _decode(raw)
        if len(items) != 9:
            raise SignedTxError("a legacy transaction has 9 fields")
        v, r, s = (int.from_bytes(x, "big") for x in items[6:])
        if v in (27, 28):  # before EIP-155: no chain id
            y, payload = v - 27, rlp.encode(items[:6])
        else:
            chain_id, y = divmod(v - 35, 2)
            payload = rlp.encode(items[:6] + [chain_id, 0, 0])
    else:
        raise SignedTxError(f"unknown transaction type {raw[:1].hex()}")
    if y not in (0, 1):
        raise SignedTxError("bad signature parity")
    return SignedTx(payload, y, r.to_bytes(32, "big"), s.to_bytes(32, "big"))


def fetch(w3: Any, tx_hash: str) -> SignedTx:
    """The signed transaction `tx_hash` from the node (any node keeps every mined transaction)."""
    return from_raw(bytes(w3.eth.get_raw_transaction(tx_hash)))


def commit_tx(ledger: Any, member: str, round_: int) -> SignedTx:
    """`member`'s signed commit transaction of `round_`, found through its `Committed` event on `ledger`
    (a `FederationLedger`); LookupError if it did not commit in that round."""
    member = to_checksum_address(member)
    for c in ledger.commitments(round_):
        if to_checksum_address(c.member) == member:
            tx = fetch(ledger.w3, c.tx_hash)
            if tx.signer() != member:  # cannot happen for a mined commit (NotDirectCall): the node lied
                raise SignedTxError(f"transaction {c.tx_hash} was not signed by {member}")
            return tx
    raise LookupError(f"{member} did not commit in round {round_}")
