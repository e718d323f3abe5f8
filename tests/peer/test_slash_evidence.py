"""Slash proofs and evidence files: an envelope's proof verifies off chain exactly as the governor checks it, and
the evidence files round-trip, are refused when they claim something else, and need no wire bytes."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from eth_account import Account

from peer.net.envelope import Envelope, EnvelopeError, SignatureError
from peer.net.envelope_proof import EnvelopeProof
from peer.net.slash_evidence import (
    FORMAT,
    FORMAT_MISMATCH,
    EvidenceFileError,
    evidence_json,
    load,
    mismatch_json,
)

MEMBER = Account.from_key(b"\x01" * 32)
FEDERATION = "0x" + "ab" * 20


def _env(update: bytes, keys: bytes = b"\x07" * 300) -> Envelope:
    return Envelope.create(MEMBER, federation=FEDERATION, chain_id=31337, round=4, update_hash=update,
                           cid="bafkreiupdate", wrapped_keys=keys, blob_sha256=b"\x33" * 32, blob_size=10,
                           timestamp=1_790_000_000)


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(doc))
    return path


def test_proof_verifies_and_binds_every_field() -> None:
    env = _env(b"\x01" * 32)
    proof = EnvelopeProof.of(env)
    proof.verify()
    assert proof.header() == env.signing_bytes() and len(proof.header()) == 32
    assert EnvelopeProof.from_json(json.loads(json.dumps(proof.to_json()))) == proof
    for name, value in (("round", 5), ("update_hash", b"\x02" * 32), ("cid_hash", b"\x03" * 32),
                        ("rest_hash", b"\x04" * 32), ("chain_id", 1), ("federation", "0x" + "cd" * 20)):
        with pytest.raises(SignatureError):
            dataclasses.replace(proof, **{name: value}).verify()
    # the wrapped keys are bound through the rest hash
    assert EnvelopeProof.of(_env(b"\x01" * 32, keys=b"\x08" * 300)).rest_hash != proof.rest_hash
    with pytest.raises(EnvelopeError):
        EnvelopeProof.from_json({"round": 1})


def test_equivocation_file_round_trip(tmp_path: Path) -> None:
    a, b = _env(b"\x01" * 32), _env(b"\x02" * 32)
    doc = evidence_json(a, b)
    assert doc["format"] == FORMAT and doc["member"] == MEMBER.address and len(doc["envelopes"]) == 2
    ev = load(_write(tmp_path, doc))
    assert ev.equivocation and ev.proofs == (EnvelopeProof.of(a), EnvelopeProof.of(b))
    # proofs alone suffice (no wrapped keys in the file)
    assert load(_write(tmp_path, {k: v for k, v in doc.items() if k != "envelopes"})).proofs == ev.proofs
    # wire bytes alone too
    assert load(_write(tmp_path, {k: v for k, v in doc.items() if k != "proofs"})).proofs == ev.proofs
    with pytest.raises(EvidenceFileError, match="'round' says 7"):
        load(_write(tmp_path, dict(doc, round=7)))
    with pytest.raises(EvidenceFileError, match="not the proof of the envelope"):
        load(_write(tmp_path, dict(doc, envelopes=doc["envelopes"][::-1])))
    with pytest.raises(EvidenceFileError, match="not an equivocation"):
        evidence_json(a, _env(b"\x01" * 32, keys=b""))


def test_mismatch_file_round_trip(tmp_path: Path) -> None:
    env = _env(b"\x02" * 32)
    doc = mismatch_json(env, committed=b"\x01" * 32)
    assert doc["format"] == FORMAT_MISMATCH and doc["committed"] == "0x" + "01" * 32
    ev = load(_write(tmp_path, doc))
    assert not ev.equivocation and ev.proofs == (EnvelopeProof.of(env),)
    with pytest.raises(EvidenceFileError, match="is missing"):
        load(_write(tmp_path, {"format": FORMAT_MISMATCH}))
    with pytest.raises(EvidenceFileError, match="not a"):
        load(_write(tmp_path, dict(doc, format="fedledger-equivocation/1")))
