"""Sealed blobs: round trip for many recipients, and every way a hostile party could misuse one."""
from __future__ import annotations

import os
import struct

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from eth_account import Account

from peer.crypto.seal import (
    FIXED_HEADER,
    WRAP,
    MalformedSeal,
    NotARecipient,
    SealContextMismatch,
    SealError,
    SealTampered,
    WrongFederation,
    WrongRecipientKey,
    WrongRound,
    WrongSender,
    parse_header,
    seal,
    unseal,
)

FED = Account.create().address
OTHER_FED = Account.create().address


@pytest.fixture(scope="module")
def members():
    return [(Account.create().address, X25519PrivateKey.generate()) for _ in range(5)]


@pytest.fixture(scope="module")
def recipients(members):
    return {addr: key.public_key() for addr, key in members}


@pytest.fixture(scope="module")
def blob(members, recipients):
    return seal(b"canonical update bytes" * 100, recipients, federation=FED, round=7, sender=members[0][0])


def _open(blob, member, *, federation=FED, round=7, sender=None):
    addr, key = member
    return unseal(blob, addr, key, federation=federation, round=round, sender=sender)


def test_round_trip_for_every_recipient(members, recipients, blob):
    sender = members[0][0]
    for addr, key in members:
        assert unseal(blob, addr, key, federation=FED, round=7, sender=sender) == b"canonical update bytes" * 100
    header = parse_header(blob)
    assert header.federation == FED and header.round == 7 and header.sender == sender
    assert sorted(header.recipients, key=lambda a: int(a, 16)) == list(header.recipients)
    assert set(header.recipients) == set(recipients)
    assert header.payload_len == 2200
    assert len(blob) == FIXED_HEADER.size + 5 * WRAP.size + 2200 + 16


def test_raw_key_bytes_lowercase_addresses_and_empty_payload(members):
    addr, key = members[1]
    from cryptography.hazmat.primitives import serialization

    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    b = seal(b"", {addr.lower(): raw}, federation=FED.lower(), round=0, sender=addr)
    assert unseal(b, addr, key, federation=FED, round=0, sender=addr.lower()) == b""


def test_fresh_keys_every_time(members, recipients):
    a = seal(b"x", recipients, federation=FED, round=1, sender=members[0][0])
    b = seal(b"x", recipients, federation=FED, round=1, sender=members[0][0])
    assert a != b and a[FIXED_HEADER.size :] != b[FIXED_HEADER.size :]


def test_outsider_is_not_a_recipient(blob, members):
    outsider = (Account.create().address, X25519PrivateKey.generate())
    with pytest.raises(NotARecipient, match="not among"):
        _open(blob, outsider, sender=members[0][0])


def test_member_address_with_someone_elses_key(blob, members):
    with pytest.raises(WrongRecipientKey):
        _open(blob, (members[1][0], members[2][1]), sender=members[0][0])
    with pytest.raises(WrongRecipientKey):
        _open(blob, (members[1][0], X25519PrivateKey.generate()), sender=members[0][0])


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"federation": OTHER_FED}, WrongFederation),
        ({"round": 8}, WrongRound),
        ({"round": 6}, WrongRound),
    ],
)
def test_wrong_context_is_rejected(blob, members, kwargs, error):
    with pytest.raises(error):
        _open(blob, members[1], sender=members[0][0], **kwargs)
    assert issubclass(error, SealContextMismatch)


def test_wrong_sender_is_rejected(blob, members):
    with pytest.raises(WrongSender):
        _open(blob, members[1], sender=members[2][0])


def _patched(blob: bytes, offset: int, new: bytes) -> bytes:
    return blob[:offset] + new + blob[offset + len(new) :]


def test_replay_by_rewriting_the_header_fails_authentication(blob, members):
    """An attacker rewrites round / federation / sender in the header to match the victim context."""
    sender = members[0][0]
    replayed_round = _patched(blob, 26, struct.pack(">Q", 8))
    with pytest.raises(SealTampered):
        _open(replayed_round, members[1], round=8, sender=sender)
    replayed_fed = _patched(blob, 6, bytes.fromhex(OTHER_FED[2:]))
    with pytest.raises(SealTampered):
        _open(replayed_fed, members[1], federation=OTHER_FED, sender=sender)
    misattributed = _patched(blob, 34, bytes.fromhex(members[3][0][2:]))
    with pytest.raises(SealTampered):
        _open(misattributed, members[1], sender=members[3][0])


def test_tampered_payload_nonce_wrap_and_truncation(blob, members):
    sender = members[0][0]
    flip_last = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(SealTampered, match="payload"):
        _open(flip_last, members[1], sender=sender)
    mid = len(blob) - 100
    with pytest.raises(SealTampered):
        _open(_patched(blob, mid, bytes([blob[mid] ^ 0x80])), members[1], sender=sender)
    with pytest.raises(SealTampered):  # payload nonce
        _open(_patched(blob, 54, bytes([blob[54] ^ 1])), members[1], sender=sender)
    # another recipient's wrap changed: my wrap still opens, but the header (payload AAD) no longer matches
    header = parse_header(blob)
    mine = header.recipients.index(members[1][0])
    other = (mine + 1) % 5
    wrapped_at = FIXED_HEADER.size + other * WRAP.size + 96
    with pytest.raises(SealTampered):
        _open(_patched(blob, wrapped_at, bytes([blob[wrapped_at] ^ 1])), members[1], sender=sender)
    my_wrapped_at = FIXED_HEADER.size + mine * WRAP.size + 96
    with pytest.raises(SealTampered, match="key wrap"):
        _open(_patched(blob, my_wrapped_at, bytes([blob[my_wrapped_at] ^ 1])), members[1], sender=sender)
    with pytest.raises(SealTampered):  # payload chopped but still long enough to parse
        _open(blob[:-5], members[1], sender=sender)


def test_substituted_ephemeral_key_or_recipient_key(blob, members):
    header = parse_header(blob)
    mine = header.recipients.index(members[1][0])
    eph_at = FIXED_HEADER.size + mine * WRAP.size + 52
    fake = X25519PrivateKey.generate().public_key().public_bytes_raw()
    with pytest.raises(SealTampered):
        _open(_patched(blob, eph_at, fake), members[1], sender=members[0][0])


def test_stripping_a_recipient_breaks_the_blob(blob, members):
    """Removing someone's wrap (e.g. to hide an update from an auditor) is detected by every other recipient."""
    header = parse_header(blob)
    victim = 0 if header.recipients[0] != members[1][0] else 1
    start = FIXED_HEADER.size + victim * WRAP.size
    stripped = blob[:start] + blob[start + WRAP.size :]
    stripped = _patched(stripped, 66, struct.pack(">H", 4))
    assert len(parse_header(stripped).recipients) == 4
    with pytest.raises(SealTampered):
        _open(stripped, members[1], sender=members[0][0])


def test_splicing_a_wrap_from_another_blob(members, recipients):
    sender = members[0][0]
    a = seal(b"A" * 64, recipients, federation=FED, round=3, sender=sender)
    b = seal(b"B" * 64, recipients, federation=FED, round=3, sender=sender)
    body = FIXED_HEADER.size + 5 * WRAP.size
    spliced = a[:FIXED_HEADER.size] + b[FIXED_HEADER.size : body] + a[body:]
    with pytest.raises(SealTampered):
        _open(spliced, members[1], round=3, sender=sender)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[:10],
        lambda b: b"NOPE" + b[4:],
        lambda b: b[:4] + b"\x02" + b[5:],
        lambda b: b[:5] + b"\x01" + b[6:],
        lambda b: b[:66] + b"\x00\x00" + b[68:],
        lambda b: b[:66] + b"\x00\x09" + b[68:],
        lambda b: b[: FIXED_HEADER.size + 5 * WRAP.size + 3],
        lambda b: b"",
        lambda b: os.urandom(len(b)),
    ],
)
def test_malformed_blobs(blob, members, mangle):
    bad = mangle(blob)
    with pytest.raises(MalformedSeal):
        parse_header(bad)
    with pytest.raises(SealError):
        _open(bad, members[1], sender=members[0][0])


def test_unsorted_wraps_are_malformed(blob):
    first = blob[FIXED_HEADER.size : FIXED_HEADER.size + WRAP.size]
    second = blob[FIXED_HEADER.size + WRAP.size : FIXED_HEADER.size + 2 * WRAP.size]
    swapped = blob[: FIXED_HEADER.size] + second + first + blob[FIXED_HEADER.size + 2 * WRAP.size :]
    with pytest.raises(MalformedSeal, match="ascending"):
        parse_header(swapped)


def test_bad_seal_arguments(members, recipients):
    addr, key = members[0]
    with pytest.raises(ValueError, match="at least one recipient"):
        seal(b"x", {}, federation=FED, round=1, sender=addr)
    with pytest.raises(ValueError, match="twice"):
        seal(b"x", {addr: key.public_key(), addr.lower(): key.public_key()}, federation=FED, round=1, sender=addr)
    with pytest.raises(ValueError, match="32 bytes"):
        seal(b"x", {addr: b"short"}, federation=FED, round=1, sender=addr)
    with pytest.raises(ValueError, match="20-byte"):
        seal(b"x", recipients, federation="0x1234", round=1, sender=addr)
    with pytest.raises(ValueError, match="round"):
        seal(b"x", recipients, federation=FED, round=-1, sender=addr)
    with pytest.raises(ValueError, match="invalid X25519"):
        seal(b"x", {addr: bytes(32)}, federation=FED, round=1, sender=addr)  # low-order point


def test_one_megabyte_blob(members, recipients):
    payload = os.urandom(1 << 20)
    b = seal(payload, recipients, federation=FED, round=1, sender=members[0][0])
    assert unseal(b, members[4][0], members[4][1], federation=FED, round=1, sender=members[0][0]) == payload
