"""Envelope and blob-chunk signing, strict parsing, replay protection and the admission rules."""
from __future__ import annotations

import dataclasses
import hashlib
import os

import pytest
from eth_account import Account

from peer.net.admission import DropReason, EnvelopeValidator, federation_topic
from peer.net.chunking import BlobAssembly, split_blob
from peer.net.envelope import BlobChunk, Envelope, EnvelopeError, SignatureError, decode_message

FEDERATION = "0x" + "ab" * 20
OTHER_FEDERATION = "0x" + "cd" * 20
CHAIN_ID = 31337
MEMBER = Account.from_key(b"\x01" * 32)
OTHER_MEMBER = Account.from_key(b"\x02" * 32)
OUTSIDER = Account.from_key(b"\x03" * 32)
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def make_envelope(account=MEMBER, *, round=3, federation=FEDERATION, chain_id=CHAIN_ID, blob=b"sealed") -> Envelope:
    return Envelope.create(
        account, federation=federation, chain_id=chain_id, round=round,
        update_hash=hashlib.sha256(b"update" + account.key).digest(),
        cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        wrapped_keys=b"\x00\x01wrapped-keys\xff" * 10, blob_sha256=hashlib.sha256(blob).digest(),
        blob_size=len(blob), timestamp=1_790_000_000,
    )


def validator(round=3, members=(MEMBER.address, OTHER_MEMBER.address), **kw) -> EnvelopeValidator:
    return EnvelopeValidator(
        federation=FEDERATION, chain_id=CHAIN_ID, is_member=set(members).__contains__,
        current_round=lambda: round, **kw,
    )


def resign_with(message, account):
    """The same fields signed by another key, keeping the claimed sender (a forgery)."""
    from eth_account.messages import encode_defunct

    signature = account.sign_message(encode_defunct(primitive=message.signing_bytes())).signature
    return dataclasses.replace(message, signature=bytes(signature))


# ---------------------------------------------------------------- envelope


def test_sign_verify_roundtrip():
    env = make_envelope()
    env.verify()
    assert env.sender == MEMBER.address
    wire = env.to_bytes()
    back = Envelope.from_bytes(wire)
    assert back == env
    back.verify()
    assert back.to_bytes() == wire  # canonical: one encoding per envelope
    assert decode_message(wire) == env


def test_encoding_is_deterministic_and_fields_are_checksummed():
    a = make_envelope(federation=FEDERATION.lower())
    b = make_envelope(federation=FEDERATION.upper().replace("0X", "0x"))
    assert a.federation == b.federation and a.to_bytes() == b.to_bytes()


def test_forged_signature_is_rejected():
    forged = resign_with(make_envelope(MEMBER), OUTSIDER)
    with pytest.raises(SignatureError, match="signed by"):
        forged.verify()
    assert validator().check(forged.to_bytes()).reason is DropReason.FORGED


@pytest.mark.parametrize(
    "field, value",
    [
        ("round", 4),
        ("chain_id", 1),
        ("federation", OTHER_FEDERATION),
        ("sender", OTHER_MEMBER.address),
        ("update_hash", b"\x00" * 32),
        ("cid", "bafkreiaaaa"),
        ("wrapped_keys", b"other"),
        ("blob_sha256", b"\x01" * 32),
        ("blob_size", 7),
        ("timestamp", 1),
    ],
)
def test_any_tampered_field_breaks_the_signature(field, value):
    tampered = dataclasses.replace(make_envelope(), **{field: value})
    with pytest.raises(SignatureError):
        tampered.verify()


def test_replay_into_another_round_or_federation_is_rejected():
    env = make_envelope(round=3)
    # Replaying the exact bytes: the signed round/federation are the original ones, so a validator of
    # another round or federation refuses them ...
    assert validator(round=7).check(env.to_bytes()).reason is DropReason.WRONG_ROUND
    other_fed = EnvelopeValidator(
        federation=OTHER_FEDERATION, chain_id=CHAIN_ID, is_member=lambda a: True, current_round=lambda: 3
    )
    assert other_fed.check(env.to_bytes()).reason is DropReason.WRONG_FEDERATION
    other_chain = EnvelopeValidator(
        federation=FEDERATION, chain_id=1, is_member=lambda a: True, current_round=lambda: 3
    )
    assert other_chain.check(env.to_bytes()).reason is DropReason.WRONG_FEDERATION
    # ... and rewriting the round or federation with the old signature is a forgery.
    moved = dataclasses.replace(env, round=7)
    assert validator(round=7).check(moved.to_bytes()).reason is DropReason.FORGED
    moved = dataclasses.replace(env, federation=OTHER_FEDERATION)
    assert other_fed.check(moved.to_bytes()).reason is DropReason.FORGED


def test_an_envelope_signature_does_not_validate_a_chunk():
    env = make_envelope()
    chunk = BlobChunk(
        federation=env.federation, chain_id=env.chain_id, round=env.round, sender=env.sender,
        update_hash=env.update_hash, blob_sha256=env.blob_sha256, blob_size=env.blob_size,
        index=0, count=1, data=b"sealed", signature=env.signature,
    )
    with pytest.raises(SignatureError):
        chunk.verify()


def _mutations(wire: bytes):
    yield b""
    yield wire[:10]
    yield wire[:-1]
    yield wire + b"\x00"
    yield b"XXXX" + wire[4:]  # magic
    yield wire[:4] + b"\x01" + wire[5:]  # version 1 (whole body signed) is no longer read
    yield wire[:4] + b"\x03" + wire[5:]
    yield wire[:5] + b"\x09" + wire[6:]  # kind
    yield os.urandom(len(wire))
    # high-s twin of a valid signature: same signer, different bytes (malleability)
    r, s, v = wire[-65:-33], int.from_bytes(wire[-33:-1], "big"), wire[-1]
    yield wire[:-65] + r + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - v])
    yield wire[:-1] + b"\x00"  # v not 27/28


def test_malformed_bytes_raise_envelope_error():
    wire = make_envelope().to_bytes()
    for bad in _mutations(wire):
        with pytest.raises(EnvelopeError):
            decode_message(bad)
        assert validator().check(bad).reason is DropReason.MALFORMED
    with pytest.raises(EnvelopeError):
        decode_message("not bytes")  # type: ignore[arg-type]


def test_truncated_at_every_offset_is_malformed_never_a_crash():
    wire = make_envelope().to_bytes()
    for cut in range(len(wire)):
        with pytest.raises(EnvelopeError):
            decode_message(wire[:cut])


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(update_hash=b"short"),
        dict(cid=""),
        dict(cid="bafy with space"),
        dict(cid="b" * 129),
        dict(round=-1),
        dict(chain_id=2**64),
        dict(wrapped_keys=b"x" * (64 * 1024 + 1)),
        dict(federation="0x1234"),
        dict(sender="not-an-address"),
    ],
)
def test_invalid_field_values_are_refused_at_construction(kwargs):
    base = dataclasses.asdict(make_envelope())
    base.update(kwargs)
    with pytest.raises(EnvelopeError):
        Envelope(**base)


def test_only_the_sender_key_can_sign():
    env = make_envelope(MEMBER)
    with pytest.raises(EnvelopeError, match="cannot sign"):
        env.signed_by(OTHER_MEMBER)
    with pytest.raises(EnvelopeError, match="not signed"):
        dataclasses.replace(env, signature=b"").to_bytes()


# ---------------------------------------------------------------- validator


def test_validator_admission_rules():
    v = validator(round=3, rounds_behind=1, rounds_ahead=1)
    for r in (2, 3, 4):
        assert v.check(make_envelope(round=r).to_bytes()).accepted
    for r in (0, 1, 5, 100):
        assert v.check(make_envelope(round=r).to_bytes()).reason is DropReason.WRONG_ROUND
    assert v.check(make_envelope(OUTSIDER).to_bytes()).reason is DropReason.NON_MEMBER
    small = validator(max_message_bytes=100)
    assert small.check(make_envelope().to_bytes()).reason is DropReason.OVERSIZED
    assert v.topic == federation_topic(CHAIN_ID, FEDERATION.lower()) == f"fedledger/{CHAIN_ID}/{v.federation}"
    assert v.federation == "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB"  # EIP-55 checksummed


def test_validator_survives_failing_callbacks():
    def boom(*_):
        raise ConnectionError("chain unreachable")

    v = EnvelopeValidator(federation=FEDERATION, chain_id=CHAIN_ID, is_member=boom, current_round=lambda: 3)
    assert v.check(make_envelope().to_bytes()).reason is DropReason.VALIDATOR_ERROR
    v = EnvelopeValidator(federation=FEDERATION, chain_id=CHAIN_ID, is_member=lambda a: True, current_round=boom)
    assert v.check(make_envelope().to_bytes()).reason is DropReason.VALIDATOR_ERROR


# ---------------------------------------------------------------- chunks


def test_blob_chunks_roundtrip_and_reassemble():
    blob = os.urandom(100_001)
    env = make_envelope(blob=blob)
    chunks = split_blob(MEMBER, env, blob, chunk_size=10_000)
    assert len(chunks) == 11 and all(c.count == 11 for c in chunks)
    v = validator()
    wires = [c.to_bytes() for c in chunks]
    assert all(v.check(w).accepted for w in wires)
    parsed = [decode_message(w) for w in wires]
    assembly = BlobAssembly(parsed[5])
    for chunk in reversed(parsed):  # any arrival order
        assert assembly.add(chunk)
    assert assembly.blob == blob and not assembly.failed
    assert not assembly.add(parsed[0])  # duplicate after completion


def test_split_refuses_a_blob_that_does_not_match_the_envelope():
    env = make_envelope(blob=b"sealed")
    with pytest.raises(EnvelopeError):
        split_blob(MEMBER, env, b"SEALED")
    with pytest.raises(EnvelopeError):
        split_blob(OTHER_MEMBER, env, b"sealed")


def test_forged_and_tampered_chunks_are_rejected():
    blob = os.urandom(5000)
    env = make_envelope(blob=blob)
    chunk = split_blob(MEMBER, env, blob, chunk_size=1000)[2]
    v = validator()
    assert v.check(resign_with(chunk, OUTSIDER).to_bytes()).reason is DropReason.FORGED
    tampered = dataclasses.replace(chunk, data=b"\x00" * len(chunk.data))
    assert v.check(tampered.to_bytes()).reason is DropReason.FORGED
    assert v.check(dataclasses.replace(chunk, index=3).to_bytes()).reason is DropReason.FORGED


def test_inconsistent_chunks_signed_by_the_sender_fail_the_hash_check():
    blob = os.urandom(3000)
    env = make_envelope(blob=blob)
    chunks = split_blob(MEMBER, env, blob, chunk_size=1000)
    lying = dataclasses.replace(chunks[1], data=os.urandom(1000)).signed_by(MEMBER)
    assembly = BlobAssembly(chunks[0])
    for chunk in (chunks[0], lying, chunks[2]):
        assert assembly.add(chunk)
    assert assembly.blob is None and assembly.failed


def test_assembly_refuses_chunks_that_overflow_or_disagree():
    blob = os.urandom(3000)
    env = make_envelope(blob=blob)
    chunks = split_blob(MEMBER, env, blob, chunk_size=1000)
    assembly = BlobAssembly(chunks[0])
    assert assembly.add(chunks[0]) and not assembly.add(chunks[0])
    other = split_blob(MEMBER, env, blob, chunk_size=500)[1]  # count 6 vs 3
    assert not assembly.add(other)
    absurd = BlobChunk(
        federation=FEDERATION, chain_id=CHAIN_ID, round=3, sender=MEMBER.address, update_hash=env.update_hash,
        blob_sha256=env.blob_sha256, blob_size=10, index=0, count=1000, data=b"",
    ).signed_by(MEMBER)
    assert BlobAssembly(absurd).failed
