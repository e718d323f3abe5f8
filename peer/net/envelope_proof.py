"""What a contract needs of a signed gossip envelope to check its signature: the fixed fields, two 32-byte
hashes and the signature (`FederationGovernor.SignedEnvelope`, docs/interfaces.md).

An envelope's EIP-191 signature covers ``envelope_header(...)`` (peer.net.envelope), so this proof is as
binding as the envelope itself while its size does not depend on the wrapped keys: a slash carries ~320 bytes
per envelope whatever the number of recipients.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eth_utils import to_checksum_address

from peer.net.envelope import (
    Envelope,
    EnvelopeError,
    SignatureError,
    _address,
    _check_signature_shape,
    _digest,
    _recover,
    _uint,
    envelope_header,
)


@dataclass(frozen=True)
class EnvelopeProof:
    """The signed header of one envelope, as the governor's slash functions take it."""

    federation: str
    chain_id: int
    round: int
    sender: str
    update_hash: bytes
    cid_hash: bytes
    rest_hash: bytes
    signature: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "federation", _address(self.federation, "federation"))
        object.__setattr__(self, "sender", _address(self.sender, "sender"))
        _uint(self.chain_id, "chain_id")
        _uint(self.round, "round")
        for name in ("update_hash", "cid_hash", "rest_hash"):
            object.__setattr__(self, name, _digest(getattr(self, name), name))
        _check_signature_shape(self.signature)
        object.__setattr__(self, "signature", bytes(self.signature))

    @classmethod
    def of(cls, env: Envelope) -> EnvelopeProof:
        if not env.signature:
            raise EnvelopeError("envelope is not signed")
        return cls(env.federation, env.chain_id, env.round, env.sender, env.update_hash, env.cid_hash(),
                   env.rest_hash(), env.signature)

    def header(self) -> bytes:
        return envelope_header(self.federation, self.chain_id, self.round, self.sender, self.update_hash,
                               self.cid_hash, self.rest_hash)

    def verify(self) -> None:
        """Raise ``SignatureError`` unless the signature over the header recovers to ``sender``."""
        signer = _recover(self.header(), self.signature)
        if signer != self.sender:
            raise SignatureError(f"envelope proof claims sender {self.sender} but is signed by {signer}")

    def as_abi(self) -> tuple:
        """The `SignedEnvelope` struct tuple (r, s, v split from the 65-byte signature)."""
        sig = self.signature
        return (self.federation, self.chain_id, self.round, self.sender, self.update_hash, self.cid_hash,
                self.rest_hash, sig[:32], sig[32:64], sig[64])

    def to_json(self) -> dict[str, Any]:
        return {"federation": self.federation, "chain_id": self.chain_id, "round": self.round, "sender": self.sender,
                "update_hash": "0x" + self.update_hash.hex(), "cid_hash": "0x" + self.cid_hash.hex(),
                "rest_hash": "0x" + self.rest_hash.hex(), "signature": "0x" + self.signature.hex()}

    @classmethod
    def from_json(cls, doc: Any) -> EnvelopeProof:
        """Parse `to_json`'s output; any missing or malformed field raises ``EnvelopeError``."""
        if not isinstance(doc, dict):
            raise EnvelopeError("an envelope proof must be a JSON object")
        try:
            raw = {k: bytes.fromhex(str(doc[k]).removeprefix("0x"))
                   for k in ("update_hash", "cid_hash", "rest_hash", "signature")}
            return cls(to_checksum_address(str(doc["federation"])), doc["chain_id"], doc["round"],
                       to_checksum_address(str(doc["sender"])), **raw)
        except KeyError as exc:
            raise EnvelopeError(f"envelope proof lacks {exc.args[0]!r}") from exc
        except ValueError as exc:  # bad hex or address
            raise EnvelopeError(f"envelope proof field is malformed: {exc}") from exc
