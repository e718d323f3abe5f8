"""Signed gossip messages of one round: the envelope and the sealed-blob chunk.

Both share one canonical, versioned, big-endian wire layout::

    MAGIC "FLGS" | version u8 | kind u8 | fields ... | signature (65 bytes r‖s‖v)

Signatures are EIP-191 (``personal_sign``, ``encode_defunct``) made with the member's Ethereum key, so the
signer can be recovered and compared with the ``sender`` field, and so any wallet can produce them. A chunk
signs every byte before its signature. An envelope signs a fixed-size header instead (``envelope_header``)::

    keccak256(abi.encode(ENVELOPE_TAG, federation, chain_id, round, sender, update_hash,
                         keccak256(cid), keccak256(blob_sha256 | blob_size u64 | timestamp u64 | wrapped_keys)))

so a contract checks an envelope's signature from its fixed fields and two 32-byte hashes, whatever the size
of its wrapped keys (``peer.net.envelope_proof``, docs/interfaces.md). Every field that a replay could abuse
(federation, chain id, round, sender) is signed; the envelope's message is 32 bytes and a chunk's at least
162, and the domain tag is fixed, so an envelope's signature never validates a chunk and vice versa.

Envelope fields: federation (20), chain_id u64, round u64, sender (20), update_hash (32), blob_sha256 (32),
blob_size u64, timestamp u64 (unix seconds), cid (u16 length + ASCII), wrapped_keys (u32 length + bytes).
Chunk fields: federation (20), chain_id u64, round u64, sender (20), update_hash (32), blob_sha256 (32),
blob_size u64, index u32, count u32, data (u32 length + bytes).

The admission rules a gossip node applies to every inbound message live in ``peer.net.admission``.
"""
from __future__ import annotations

import dataclasses
import hashlib
import re
import struct
import time
from dataclasses import dataclass, field
from typing import ClassVar

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import is_hex_address, keccak, to_canonical_address, to_checksum_address

from peer.errors import PeerError

MAGIC = b"FLGS"
VERSION = 2  # 2: an envelope signs its fixed-size header, not its body
KIND_ENVELOPE = 1
KIND_CHUNK = 2

SIGNATURE_LEN = 65
MAX_CID_LEN = 128
MAX_WRAPPED_KEYS = 64 * 1024
MAX_CHUNK_DATA = 1024 * 1024 - 4096  # hard protocol ceiling; the policy limit below is lower
MAX_U64 = 2**64 - 1
MAX_U32 = 2**32 - 1

_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
_CID_CHARS = re.compile(rb"^[A-Za-z0-9]+$")
_HEAD = struct.Struct(">4sBB")
_COMMON = struct.Struct(">20sQQ20s32s32sQ")  # federation chain round sender update_hash blob_sha256 blob_size
#: Domain tag of the envelope header (FederationGovernor.ENVELOPE_TAG).
ENVELOPE_TAG = keccak(b"fedledger.gossip.envelope.v2")


def _word(value: int | bytes) -> bytes:
    return value.to_bytes(32, "big") if isinstance(value, int) else value.rjust(32, b"\0")


def envelope_header(federation: str, chain_id: int, round: int, sender: str, update_hash: bytes, cid_hash: bytes,
                    rest_hash: bytes) -> bytes:
    """The 32 bytes an envelope's EIP-191 signature covers (Solidity's keccak256(abi.encode(...)) of them)."""
    return keccak(b"".join(_word(v) for v in (
        ENVELOPE_TAG, to_canonical_address(federation), chain_id, round, to_canonical_address(sender), update_hash,
        cid_hash, rest_hash,
    )))


class EnvelopeError(PeerError, ValueError):
    """A gossip message that is malformed: wrong layout, lengths, field values or trailing bytes."""


class SignatureError(EnvelopeError):
    """A well-formed gossip message whose signature was not made by its ``sender``."""


def _address(value: str | bytes, what: str) -> str:
    if isinstance(value, bytes):
        if len(value) != 20:
            raise EnvelopeError(f"{what} must be 20 bytes, got {len(value)}")
        return to_checksum_address(value)
    if not isinstance(value, str) or not is_hex_address(value):
        raise EnvelopeError(f"{what} is not an Ethereum address: {value!r}")
    return to_checksum_address(value)


def _uint(value: int, what: str, bound: int = MAX_U64) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= bound:
        raise EnvelopeError(f"{what} must be an integer in [0, {bound}], got {value!r}")
    return value


def _digest(value: bytes, what: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise EnvelopeError(f"{what} must be 32 bytes")
    return bytes(value)


def _check_signature_shape(signature: bytes) -> None:
    if not isinstance(signature, (bytes, bytearray)) or len(signature) != SIGNATURE_LEN:
        raise EnvelopeError(f"signature must be {SIGNATURE_LEN} bytes")
    s = int.from_bytes(signature[32:64], "big")
    # High-s or odd v would give a second valid encoding of the same signed body (malleability).
    if signature[64] not in (27, 28) or not 0 < s <= _SECP256K1_N // 2:
        raise EnvelopeError("signature is not in canonical (low-s, v in {27, 28}) form")


def _recover(body: bytes, signature: bytes) -> str:
    try:
        return Account.recover_message(encode_defunct(primitive=body), signature=signature)
    except Exception as exc:  # eth-keys raises several types for unrecoverable points
        raise SignatureError(f"signature does not recover: {exc}") from exc


def _sign(account: LocalAccount, body: bytes) -> bytes:
    return bytes(account.sign_message(encode_defunct(primitive=body)).signature)


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise EnvelopeError(f"truncated message: {what} needs {n} bytes at offset {self.pos}")
        out = bytes(self.data[self.pos : self.pos + n])
        self.pos += n
        return out

    def unpack(self, fmt: struct.Struct, what: str) -> tuple:
        return fmt.unpack(self.take(fmt.size, what))


class _SignedMessage:
    """Signature handling shared by both gossip message kinds (each provides `body_bytes` (the wire bytes before
    the signature), `signing_bytes` (what the signature covers), `sender`, `signature` and a `LABEL` used in
    error messages)."""

    LABEL: ClassVar[str]

    def recover_signer(self) -> str:
        if not self.signature:
            raise SignatureError(f"{self.LABEL} is not signed")
        return _recover(self.signing_bytes(), self.signature)

    def verify(self) -> None:
        """Raise ``SignatureError`` unless the signature recovers to ``sender``."""
        signer = self.recover_signer()
        if signer != self.sender:
            raise SignatureError(f"{self.LABEL} claims sender {self.sender} but is signed by {signer}")

    def body_id(self) -> bytes:
        """Identity of the message's content (signature excluded), used for de-duplication."""
        return hashlib.sha256(self.body_bytes()).digest()

    def to_bytes(self) -> bytes:
        if not self.signature:
            raise EnvelopeError(f"{self.LABEL} is not signed")
        return self.body_bytes() + self.signature


@dataclass(frozen=True)
class Envelope(_SignedMessage):
    """A member's signed announcement of its sealed update for one round."""

    federation: str
    chain_id: int
    round: int
    sender: str
    update_hash: bytes
    cid: str
    wrapped_keys: bytes
    blob_sha256: bytes
    blob_size: int
    timestamp: int
    signature: bytes = field(default=b"", repr=False)

    KIND: ClassVar[int] = KIND_ENVELOPE
    LABEL: ClassVar[str] = "envelope"

    def __post_init__(self) -> None:
        object.__setattr__(self, "federation", _address(self.federation, "federation"))
        object.__setattr__(self, "sender", _address(self.sender, "sender"))
        _uint(self.chain_id, "chain_id")
        _uint(self.round, "round")
        _uint(self.blob_size, "blob_size")
        _uint(self.timestamp, "timestamp")
        object.__setattr__(self, "update_hash", _digest(self.update_hash, "update_hash"))
        object.__setattr__(self, "blob_sha256", _digest(self.blob_sha256, "blob_sha256"))
        if not isinstance(self.cid, str):
            raise EnvelopeError("cid must be a string")
        raw_cid = self.cid.encode("ascii", errors="replace")
        if not 0 < len(raw_cid) <= MAX_CID_LEN or not _CID_CHARS.match(raw_cid):
            raise EnvelopeError(f"cid must be 1..{MAX_CID_LEN} alphanumeric ASCII characters: {self.cid!r}")
        if not isinstance(self.wrapped_keys, (bytes, bytearray)) or len(self.wrapped_keys) > MAX_WRAPPED_KEYS:
            raise EnvelopeError(f"wrapped_keys must be bytes of at most {MAX_WRAPPED_KEYS}")
        object.__setattr__(self, "wrapped_keys", bytes(self.wrapped_keys))
        if self.signature:
            _check_signature_shape(self.signature)
            object.__setattr__(self, "signature", bytes(self.signature))

    @classmethod
    def create(
        cls,
        account: LocalAccount,
        *,
        federation: str,
        chain_id: int,
        round: int,
        update_hash: bytes,
        cid: str,
        wrapped_keys: bytes,
        blob_sha256: bytes,
        blob_size: int,
        timestamp: int | None = None,
    ) -> Envelope:
        """Build and sign an envelope; the sender is the account's address."""
        unsigned = cls(
            federation=federation, chain_id=chain_id, round=round, sender=account.address,
            update_hash=update_hash, cid=cid, wrapped_keys=wrapped_keys, blob_sha256=blob_sha256,
            blob_size=blob_size, timestamp=int(time.time()) if timestamp is None else timestamp,
        )
        return unsigned.signed_by(account)

    def signed_by(self, account: LocalAccount) -> Envelope:
        if account.address != self.sender:
            raise EnvelopeError(f"account {account.address} cannot sign for sender {self.sender}")
        return _replace_signature(self, _sign(account, self.signing_bytes()))

    def cid_hash(self) -> bytes:
        return keccak(self.cid.encode("ascii"))

    def rest_hash(self) -> bytes:
        """keccak256 of the signed fields a slash proof does not carry (blob digest and size, time, wrapped keys)."""
        return keccak(self.blob_sha256 + struct.pack(">QQ", self.blob_size, self.timestamp) + self.wrapped_keys)

    def signing_bytes(self) -> bytes:
        """The fixed-size header the signature covers (``envelope_header``)."""
        return envelope_header(self.federation, self.chain_id, self.round, self.sender, self.update_hash,
                               self.cid_hash(), self.rest_hash())

    def body_bytes(self) -> bytes:
        cid = self.cid.encode("ascii")
        return b"".join((
            _HEAD.pack(MAGIC, VERSION, KIND_ENVELOPE),
            _COMMON.pack(
                to_canonical_address(self.federation), self.chain_id, self.round,
                to_canonical_address(self.sender), self.update_hash, self.blob_sha256, self.blob_size,
            ),
            struct.pack(">QH", self.timestamp, len(cid)), cid,
            struct.pack(">I", len(self.wrapped_keys)), self.wrapped_keys,
        ))

    @classmethod
    def from_bytes(cls, data: bytes) -> Envelope:
        message = decode_message(data)
        if not isinstance(message, Envelope):
            raise EnvelopeError("message is a blob chunk, not an envelope")
        return message



@dataclass(frozen=True)
class BlobChunk(_SignedMessage):
    """One signed piece of a member's sealed blob (chunk ``index`` of ``count``)."""

    federation: str
    chain_id: int
    round: int
    sender: str
    update_hash: bytes
    blob_sha256: bytes
    blob_size: int
    index: int
    count: int
    data: bytes = field(repr=False)
    signature: bytes = field(default=b"", repr=False)

    KIND: ClassVar[int] = KIND_CHUNK
    LABEL: ClassVar[str] = "chunk"

    def __post_init__(self) -> None:
        object.__setattr__(self, "federation", _address(self.federation, "federation"))
        object.__setattr__(self, "sender", _address(self.sender, "sender"))
        _uint(self.chain_id, "chain_id")
        _uint(self.round, "round")
        _uint(self.blob_size, "blob_size")
        _uint(self.count, "count", MAX_U32)
        _uint(self.index, "index", MAX_U32)
        if not 0 <= self.index < self.count:
            raise EnvelopeError(f"chunk index {self.index} outside count {self.count}")
        object.__setattr__(self, "update_hash", _digest(self.update_hash, "update_hash"))
        object.__setattr__(self, "blob_sha256", _digest(self.blob_sha256, "blob_sha256"))
        if not isinstance(self.data, (bytes, bytearray)) or len(self.data) > MAX_CHUNK_DATA:
            raise EnvelopeError(f"chunk data must be bytes of at most {MAX_CHUNK_DATA}")
        object.__setattr__(self, "data", bytes(self.data))
        if self.signature:
            _check_signature_shape(self.signature)
            object.__setattr__(self, "signature", bytes(self.signature))

    def signed_by(self, account: LocalAccount) -> BlobChunk:
        if account.address != self.sender:
            raise EnvelopeError(f"account {account.address} cannot sign for sender {self.sender}")
        return _replace_signature(self, _sign(account, self.signing_bytes()))

    def body_bytes(self) -> bytes:
        return b"".join((
            _HEAD.pack(MAGIC, VERSION, KIND_CHUNK),
            _COMMON.pack(
                to_canonical_address(self.federation), self.chain_id, self.round,
                to_canonical_address(self.sender), self.update_hash, self.blob_sha256, self.blob_size,
            ),
            struct.pack(">III", self.index, self.count, len(self.data)), self.data,
        ))

    def signing_bytes(self) -> bytes:
        """A chunk signs its whole body."""
        return self.body_bytes()


GossipMessage = Envelope | BlobChunk


def _replace_signature(message, signature: bytes):
    return dataclasses.replace(message, signature=signature)


def decode_message(data: bytes) -> GossipMessage:
    """Parse one wire message strictly; any deviation raises ``EnvelopeError`` (signature not checked)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise EnvelopeError("message must be bytes")
    data = bytes(data)
    reader = _Reader(data)
    magic, version, kind = reader.unpack(_HEAD, "header")
    if magic != MAGIC:
        raise EnvelopeError("not a fedledger gossip message (bad magic)")
    if version != VERSION:
        raise EnvelopeError(f"unsupported message version {version}")
    federation, chain_id, round_, sender, update_hash, blob_sha256, blob_size = reader.unpack(_COMMON, "fields")
    common = dict(
        federation=federation, chain_id=chain_id, round=round_, sender=sender,
        update_hash=update_hash, blob_sha256=blob_sha256, blob_size=blob_size,
    )
    message: GossipMessage
    if kind == KIND_ENVELOPE:
        timestamp, cid_len = reader.unpack(struct.Struct(">QH"), "timestamp")
        if cid_len > MAX_CID_LEN:
            raise EnvelopeError("cid too long")
        raw_cid = reader.take(cid_len, "cid")
        (keys_len,) = reader.unpack(struct.Struct(">I"), "wrapped_keys length")
        if keys_len > MAX_WRAPPED_KEYS:
            raise EnvelopeError("wrapped_keys too long")
        wrapped_keys = reader.take(keys_len, "wrapped_keys")
        try:
            cid = raw_cid.decode("ascii")
        except UnicodeDecodeError as exc:
            raise EnvelopeError("cid is not ASCII") from exc
        signature = reader.take(SIGNATURE_LEN, "signature")
        message = Envelope(cid=cid, wrapped_keys=wrapped_keys, timestamp=timestamp, signature=signature, **common)
    elif kind == KIND_CHUNK:
        index, count, data_len = reader.unpack(struct.Struct(">III"), "chunk header")
        if data_len > MAX_CHUNK_DATA:
            raise EnvelopeError("chunk data too long")
        chunk_data = reader.take(data_len, "chunk data")
        signature = reader.take(SIGNATURE_LEN, "signature")
        message = BlobChunk(index=index, count=count, data=chunk_data, signature=signature, **common)
    else:
        raise EnvelopeError(f"unknown message kind {kind}")
    if reader.pos != len(data):
        raise EnvelopeError(f"{len(data) - reader.pos} trailing bytes after the signature")
    if not message.signature:
        raise EnvelopeError("message is not signed")
    return message
