"""Sealed blobs: a peer's canonical update, encrypted so only the federation's members and auditors can read it.

The payload is encrypted once with AES-256-GCM under a fresh random content key; the content key is wrapped for
every recipient with an ephemeral X25519 key agreement, HKDF-SHA256 and AES-256-GCM (ECIES-style). Everything
public about the blob — federation, round, sender, the recipient list — is in a binary header that is the
associated data of the payload encryption, and federation/round/sender/recipient are also mixed into every
key-wrapping KDF and its associated data. So a blob cannot be replayed into another round or federation,
attributed to another sender, or have its recipient list edited, without unsealing failing.

Sealing is encryption, not a signature: anyone holding the recipients' public keys can seal a blob naming any
sender. Who really sent a blob is established by the signed gossip envelope and the on-chain commitment of the
blob's hash; the binding here makes sure a blob authenticated that way can't be reused under another context.

Outsiders who can read IPFS learn the header (who sent what to whom, when) and the payload length, nothing else.

Sealed blob format, version 1 (all integers big-endian)::

    offset  size   field
    0       4      magic  b"FLSB"
    4       1      version = 1
    5       1      flags = 0 (reserved, must be 0)
    6       20     federation (ledger contract address)
    26      8      round (uint64)
    34      20     sender address
    54      12     payload nonce
    66      2      k = number of recipients (uint16, >= 1)
    68      144·k  key wraps, strictly ascending by recipient address, each:
                     20 recipient address | 32 recipient X25519 public key | 32 ephemeral X25519 public key
                     | 12 wrap nonce | 48 wrapped content key (32 bytes + 16-byte GCM tag)
    68+144k …      payload ciphertext ‖ 16-byte GCM tag; AAD = b"fedledger/seal/v1/payload" ‖ header (bytes 0 … 68+144k)

Key wrap for recipient R (address a_R, public key P_R), ephemeral key pair (e, E)::

    ctx  = version ‖ federation ‖ round ‖ sender ‖ a_R ‖ P_R ‖ E
    kek  = HKDF-SHA256(ikm = X25519(e, P_R), salt = none, info = b"fedledger/seal/v1/kek" ‖ ctx, length 32)
    wrap = AES-256-GCM(kek, wrap nonce, content key, AAD = b"fedledger/seal/v1/wrap" ‖ ctx)
"""
from __future__ import annotations

import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eth_utils import to_checksum_address

from peer.errors import PeerError

MAGIC = b"FLSB"
VERSION = 1
FIXED_HEADER = struct.Struct(">4sBB20sQ20s12sH")  # 68 bytes
WRAP = struct.Struct(">20s32s32s12s48s")  # 144 bytes
TAG_LEN = 16
MAX_RECIPIENTS = 0xFFFF

_PAYLOAD_AAD = b"fedledger/seal/v1/payload"
_KEK_INFO = b"fedledger/seal/v1/kek"
_WRAP_AAD = b"fedledger/seal/v1/wrap"

#: A sealed blob is plain bytes in the format above (what is added to IPFS and gossiped).
SealedBlob = bytes


class SealError(PeerError, ValueError):
    """Base class: the blob can't be unsealed (each reason has its own subclass); a ValueError, so the
    adapters' `fetch_update` treats it as any malformed input."""


class MalformedSeal(SealError):
    """Not a sealed blob of a supported version, or truncated / structurally invalid."""


class SealContextMismatch(SealError):
    """The header's federation, round or sender is not the expected one (replay or misattribution)."""


class WrongFederation(SealContextMismatch):
    pass


class WrongRound(SealContextMismatch):
    pass


class WrongSender(SealContextMismatch):
    pass


class NotARecipient(SealError):
    """The blob carries no key for this address."""


class WrongRecipientKey(NotARecipient):
    """The blob's key for this address was wrapped for a different X25519 public key."""


class SealTampered(SealError):
    """Authentication failed: header, key wrap or payload was modified (or forged)."""


@dataclass(frozen=True)
class KeyWrap:
    recipient: str  # checksummed address
    recipient_key: bytes  # 32-byte X25519 public key
    ephemeral_key: bytes
    nonce: bytes
    wrapped_key: bytes


@dataclass(frozen=True)
class SealHeader:
    """The public part of a sealed blob (readable by anyone, authenticated only by unsealing)."""

    version: int
    federation: str
    round: int
    sender: str
    nonce: bytes
    wraps: tuple[KeyWrap, ...]
    header_len: int
    payload_len: int  # plaintext length

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(w.recipient for w in self.wraps)


def _address_bytes(address: str | bytes, what: str) -> bytes:
    if isinstance(address, (bytes, bytearray)):
        raw = bytes(address)
    else:
        text = address[2:] if address[:2] in ("0x", "0X") else address
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            raw = b""
    if len(raw) != 20:
        raise ValueError(f"{what} is not a 20-byte address: {address!r}")
    return raw


def _public_key_bytes(key: bytes | X25519PublicKey, who: str) -> bytes:
    if isinstance(key, X25519PublicKey):
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    raw = bytes(key)
    if len(raw) != 32:
        raise ValueError(f"X25519 public key of {who} must be 32 bytes, got {len(raw)}")
    return raw


def _wrap_context(federation: bytes, round: int, sender: bytes, recipient: bytes, recipient_key: bytes,
                  ephemeral_key: bytes) -> bytes:
    return bytes([VERSION]) + federation + struct.pack(">Q", round) + sender + recipient + recipient_key + ephemeral_key


def _kek(shared: bytes, ctx: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_KEK_INFO + ctx).derive(shared)


def seal(
    plaintext: bytes,
    recipients: Mapping[str, bytes | X25519PublicKey],
    *,
    federation: str,
    round: int,
    sender: str,
) -> SealedBlob:
    """Encrypt `plaintext` for `recipients` (address → X25519 public key), bound to (federation, round, sender).

    The sender is not implicitly a recipient: include its own address to be able to read the blob back.
    """
    fed_raw, sender_raw = _address_bytes(federation, "federation"), _address_bytes(sender, "sender")
    if not 0 <= round < 2**64:
        raise ValueError(f"round out of range: {round}")
    entries: dict[bytes, bytes] = {}
    for address, key in recipients.items():
        raw = _address_bytes(address, "recipient")
        if raw in entries:
            raise ValueError(f"recipient listed twice: {to_checksum_address(raw)}")
        entries[raw] = _public_key_bytes(key, to_checksum_address(raw))
    if not entries:
        raise ValueError("a sealed blob needs at least one recipient")
    if len(entries) > MAX_RECIPIENTS:
        raise ValueError(f"at most {MAX_RECIPIENTS} recipients")

    content_key = AESGCM.generate_key(bit_length=256)
    nonce = os.urandom(12)
    parts = [FIXED_HEADER.pack(MAGIC, VERSION, 0, fed_raw, round, sender_raw, nonce, len(entries))]
    for recipient in sorted(entries):
        recipient_key = entries[recipient]
        ephemeral = X25519PrivateKey.generate()
        ephemeral_pub = _public_key_bytes(ephemeral.public_key(), "ephemeral")
        try:
            shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient_key))
        except ValueError as exc:  # low-order point: the registered key is unusable
            raise ValueError(f"invalid X25519 public key for {to_checksum_address(recipient)}") from exc
        ctx = _wrap_context(fed_raw, round, sender_raw, recipient, recipient_key, ephemeral_pub)
        wrap_nonce = os.urandom(12)
        wrapped = AESGCM(_kek(shared, ctx)).encrypt(wrap_nonce, content_key, _WRAP_AAD + ctx)
        parts.append(WRAP.pack(recipient, recipient_key, ephemeral_pub, wrap_nonce, wrapped))
    header = b"".join(parts)
    return header + AESGCM(content_key).encrypt(nonce, bytes(plaintext), _PAYLOAD_AAD + header)


def parse_header(blob: bytes) -> SealHeader:
    """Public header of a sealed blob; MalformedSeal if it isn't one. Authenticates nothing."""
    blob = memoryview(blob)
    if len(blob) < FIXED_HEADER.size:
        raise MalformedSeal(f"sealed blob truncated: {len(blob)} bytes, header alone is {FIXED_HEADER.size}")
    magic, version, flags, fed, round_, sender, nonce, count = FIXED_HEADER.unpack_from(blob, 0)
    if magic != MAGIC:
        raise MalformedSeal("not a fedledger sealed blob (bad magic)")
    if version != VERSION:
        raise MalformedSeal(f"unsupported sealed blob version {version} (this peer reads version {VERSION})")
    if flags != 0:
        raise MalformedSeal(f"reserved flags set: {flags:#04x}")
    if count == 0:
        raise MalformedSeal("sealed blob has no recipients")
    header_len = FIXED_HEADER.size + count * WRAP.size
    if len(blob) < header_len + TAG_LEN:
        raise MalformedSeal(f"sealed blob truncated: {len(blob)} bytes, header says at least {header_len + TAG_LEN}")
    wraps = []
    previous = b""
    for i in range(count):
        recipient, rkey, ekey, wnonce, wrapped = WRAP.unpack_from(blob, FIXED_HEADER.size + i * WRAP.size)
        if recipient <= previous:
            raise MalformedSeal("key wraps not in strictly ascending recipient order")
        previous = recipient
        wraps.append(KeyWrap(to_checksum_address(recipient), rkey, ekey, wnonce, wrapped))
    return SealHeader(
        version=version,
        federation=to_checksum_address(fed),
        round=round_,
        sender=to_checksum_address(sender),
        nonce=nonce,
        wraps=tuple(wraps),
        header_len=header_len,
        payload_len=len(blob) - header_len - TAG_LEN,
    )


def unseal(
    blob: bytes,
    my_address: str,
    my_x25519_private: X25519PrivateKey,
    *,
    federation: str,
    round: int,
    sender: str,
) -> bytes:
    """Decrypt a sealed blob addressed to `my_address`, expected to come from `sender` for (federation, round).

    Raises MalformedSeal, WrongFederation, WrongRound, WrongSender, NotARecipient (WrongRecipientKey) or
    SealTampered — all SealError.
    """
    header = parse_header(blob)
    fed_raw, sender_raw = _address_bytes(federation, "federation"), _address_bytes(sender, "sender")
    me = _address_bytes(my_address, "my_address")
    if bytes.fromhex(header.federation[2:]) != fed_raw:
        raise WrongFederation(f"blob is for federation {header.federation}, expected {to_checksum_address(fed_raw)}")
    if header.round != round:
        raise WrongRound(f"blob is for round {header.round}, expected round {round}")
    if bytes.fromhex(header.sender[2:]) != sender_raw:
        raise WrongSender(f"blob names sender {header.sender}, expected {to_checksum_address(sender_raw)}")
    wrap = next((w for w in header.wraps if bytes.fromhex(w.recipient[2:]) == me), None)
    if wrap is None:
        raise NotARecipient(f"{to_checksum_address(me)} is not among the blob's {len(header.wraps)} recipients")
    my_public = _public_key_bytes(my_x25519_private.public_key(), "me")
    if wrap.recipient_key != my_public:
        raise WrongRecipientKey(
            f"the blob's key for {wrap.recipient} was wrapped for X25519 key 0x{wrap.recipient_key.hex()[:16]}…, "
            f"not this peer's 0x{my_public.hex()[:16]}…"
        )
    ctx = _wrap_context(fed_raw, round, sender_raw, me, my_public, wrap.ephemeral_key)
    try:
        shared = my_x25519_private.exchange(X25519PublicKey.from_public_bytes(wrap.ephemeral_key))
        content_key = AESGCM(_kek(shared, ctx)).decrypt(wrap.nonce, wrap.wrapped_key, _WRAP_AAD + ctx)
    except (InvalidTag, ValueError) as exc:
        raise SealTampered(f"key wrap for {wrap.recipient} fails authentication (tampered or forged)") from exc
    view = memoryview(blob)  # the payload is decrypted in place: slicing bytes would copy the whole update
    try:
        return AESGCM(content_key).decrypt(
            header.nonce, view[header.header_len :], _PAYLOAD_AAD + bytes(view[: header.header_len])
        )
    except InvalidTag as exc:
        raise SealTampered("payload or header fails authentication (tampered)") from exc
