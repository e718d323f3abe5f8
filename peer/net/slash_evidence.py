"""The evidence files `fedledger gov slash --evidence FILE` submits (docs/governance.md).

Equivocation (two envelopes of one member and round naming different updates)::

    {"format": "fedledger-equivocation/2", "federation": "0x…", "chain_id": 31337, "member": "0x…", "round": 3,
     "proofs": [<proof A>, <proof B>], "envelopes": ["0x<wire bytes of A>", "0x<wire bytes of B>"]}

Commitment mismatch (an envelope naming another update than the member committed on chain for that round)::

    {"format": "fedledger-commit-mismatch/1", "federation": "0x…", "chain_id": 31337, "member": "0x…", "round": 3,
     "proof": <proof>, "envelope": "0x<wire bytes>",
     "commit_tx": {"payload": "0x…", "y_parity": 0, "r": "0x…", "s": "0x…"}}

`commit_tx` is the member's own signed commit transaction for that round (`ledger_tools.chain.signed_tx`), the
proof of what it committed; without it `gov slash` reads it from the chain by the member's `Committed` event.

A proof is `EnvelopeProof.to_json()`: the envelope's signed fixed-size header (fields, keccak of the CID and of
the rest of the body, signature), which is all the governor checks. The wire bytes are optional (an auditor can
re-derive the proofs from them; when both are given they must agree), so are `federation`, `chain_id`,
`member` and `round`: they say what the file claims, and `load` refuses a file whose proofs say otherwise, so a
mislabelled file fails here in one line instead of as a revert. Peers hold equivocating pairs in
`GossipStore.equivocations()`; envelope files saved for `audit verify --evidence DIR` pair up the same way.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger_tools.chain.signed_tx import SignedTx, SignedTxError
from peer.net.envelope import Envelope, EnvelopeError, decode_message
from peer.net.envelope_proof import EnvelopeProof

FORMAT = "fedledger-equivocation/2"
FORMAT_MISMATCH = "fedledger-commit-mismatch/1"
MAX_FILE = 512 * 1024


class EvidenceFileError(ValueError):
    """An evidence file that is unreadable, malformed, or not the offence it claims."""


@dataclass(frozen=True)
class SlashEvidence:
    """What one slash transaction submits: two proofs (equivocation) or one and, if the file holds it, the
    member's signed commit transaction (commitment mismatch)."""

    proofs: tuple[EnvelopeProof, ...]
    commit_tx: SignedTx | None = None

    @property
    def equivocation(self) -> bool:
        return len(self.proofs) == 2


def _proof(item: Envelope | EnvelopeProof) -> EnvelopeProof:
    return item if isinstance(item, EnvelopeProof) else EnvelopeProof.of(item)


def _claims(p: EnvelopeProof) -> dict[str, Any]:
    return {"federation": p.federation, "chain_id": p.chain_id, "member": p.sender, "round": p.round}


def check_equivocation(a: EnvelopeProof, b: EnvelopeProof) -> None:
    if a.sender != b.sender or a.round != b.round or a.update_hash == b.update_hash:
        raise EvidenceFileError("not an equivocation: the envelopes need one sender, one round, two update hashes")


def evidence_json(a: Envelope | EnvelopeProof, b: Envelope | EnvelopeProof) -> dict[str, Any]:
    """The equivocation document for two signed envelopes (or their proofs) of one sender and round with
    different update hashes; wire bytes are included for the envelopes given whole."""
    pa, pb = _proof(a), _proof(b)
    check_equivocation(pa, pb)
    doc = {"format": FORMAT, **_claims(pa), "proofs": [pa.to_json(), pb.to_json()]}
    if isinstance(a, Envelope) and isinstance(b, Envelope):
        doc["envelopes"] = ["0x" + a.to_bytes().hex(), "0x" + b.to_bytes().hex()]
    return doc


def mismatch_json(env: Envelope | EnvelopeProof, committed: bytes | None = None, *,
                  commit_tx: SignedTx | None = None) -> dict[str, Any]:
    """The commitment-mismatch document for one signed envelope; `committed` (the update hash on chain) is
    informational, `commit_tx` the member's signed commit transaction that proves it."""
    p = _proof(env)
    doc: dict[str, Any] = {"format": FORMAT_MISMATCH, **_claims(p), "proof": p.to_json()}
    if committed is not None:
        doc["committed"] = "0x" + committed.hex()
    if commit_tx is not None:
        doc["commit_tx"] = commit_tx.to_json()
    if isinstance(env, Envelope):
        doc["envelope"] = "0x" + env.to_bytes().hex()
    return doc


def _envelope(text: Any, where: str) -> Envelope:
    try:
        message = decode_message(bytes.fromhex(text.removeprefix("0x")))
    except (AttributeError, ValueError, EnvelopeError) as exc:
        raise EvidenceFileError(f"{where} is not a signed gossip envelope in hex: {exc}") from exc
    if not isinstance(message, Envelope):
        raise EvidenceFileError(f"{where} is a blob chunk, not an envelope")
    return message


def _parse_proof(doc: Any, wire: Any, where: str) -> EnvelopeProof:
    derived = None if wire is None else EnvelopeProof.of(_envelope(wire, where.replace("proof", "envelope")))
    if doc is None:
        if derived is None:
            raise EvidenceFileError(f"{where} is missing")
        return derived
    try:
        proof = EnvelopeProof.from_json(doc)
    except EnvelopeError as exc:
        raise EvidenceFileError(f"{where}: {exc}") from exc
    if derived is not None and derived != proof:
        raise EvidenceFileError(f"{where} is not the proof of the envelope given with it")
    return proof


def _read(path: Path) -> dict[str, Any]:
    try:
        if path.stat().st_size > MAX_FILE:
            raise EvidenceFileError(f"{path} is larger than {MAX_FILE} bytes")
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise EvidenceFileError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise EvidenceFileError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") not in (FORMAT, FORMAT_MISMATCH):
        raise EvidenceFileError(f"{path} is not a {FORMAT} or {FORMAT_MISMATCH} document")
    return doc


def _pair_items(doc: dict[str, Any], key: str) -> list[Any]:
    items = doc.get(key, [None, None])
    if not isinstance(items, list) or len(items) != 2:
        raise EvidenceFileError(f"'{key}' must hold exactly two entries")
    return items


def load(path: Path) -> SlashEvidence:
    """The proofs of an evidence file (either format), checked against what the file claims."""
    doc = _read(path)
    if doc["format"] == FORMAT:
        proofs, wires = _pair_items(doc, "proofs"), _pair_items(doc, "envelopes")
        pair = tuple(_parse_proof(proofs[i], wires[i], f"proofs[{i}]") for i in (0, 1))
        check_equivocation(*pair)
    else:
        pair = (_parse_proof(doc.get("proof"), doc.get("envelope"), "proof"),)
    for key, value in _claims(pair[0]).items():
        if key in doc and str(doc[key]).lower() != str(value).lower():
            raise EvidenceFileError(f"'{key}' says {doc[key]} but the envelopes say {value}")
    commit_tx = None if doc["format"] == FORMAT or doc.get("commit_tx") is None else _commit_tx(doc["commit_tx"],
                                                                                                  pair[0])
    return SlashEvidence(pair, commit_tx)


def _commit_tx(doc: Any, envelope: EnvelopeProof) -> SignedTx:
    """The file's signed commit transaction, checked to be the envelope sender's commit of the envelope's round
    with another update hash (what the governor will check, refused here in one line)."""
    try:
        tx = SignedTx.from_json(doc)
        signer, (round_, update_hash) = tx.signer(), tx.commit_call()
    except SignedTxError as exc:
        raise EvidenceFileError(f"commit_tx: {exc}") from exc
    if signer.lower() != envelope.sender.lower():
        raise EvidenceFileError(f"commit_tx was signed by {signer}, not by the envelope's sender {envelope.sender}")
    if round_ != envelope.round:
        raise EvidenceFileError(f"commit_tx commits round {round_}, the envelope is for round {envelope.round}")
    if update_hash == envelope.update_hash:
        raise EvidenceFileError("commit_tx commits the update the envelope names: no mismatch")
    return tx


def load_envelope_file(path: Path) -> Envelope:
    """One raw envelope file (wire bytes, as saved for `audit verify --evidence DIR`)."""
    try:
        message = decode_message(path.read_bytes())
    except OSError as exc:
        raise EvidenceFileError(f"cannot read {path}: {exc.strerror}") from exc
    except EnvelopeError as exc:
        raise EvidenceFileError(f"{path} is not a signed gossip envelope: {exc}") from exc
    if not isinstance(message, Envelope):
        raise EvidenceFileError(f"{path} is a blob chunk, not an envelope")
    return message
