"""The equivocation evidence file `fedledger gov slash --evidence FILE` submits (docs/governance.md):

    {"format": "fedledger-equivocation/1", "federation": "0x…", "chain_id": 31337, "member": "0x…", "round": 3,
     "envelopes": ["0x<wire bytes of envelope A>", "0x<wire bytes of envelope B>"]}

`envelopes` are the two signed gossip envelopes exactly as gossiped (signature included): the governor checks
them on chain. The other fields say what the file claims, and `load` refuses a file whose envelopes say
otherwise, so a mislabelled file fails here in one line instead of as a revert. Peers hold such pairs in
`GossipStore.equivocations()`; envelope files saved for `audit verify --evidence DIR` pair up the same way.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from peer.net.envelope import Envelope, EnvelopeError, decode_message

FORMAT = "fedledger-equivocation/1"
MAX_FILE = 512 * 1024


class EvidenceFileError(ValueError):
    """An evidence file that is unreadable, malformed, or not an equivocation."""


def evidence_json(a: Envelope, b: Envelope) -> dict[str, Any]:
    """The evidence document for two signed envelopes of one sender and round with different update hashes."""
    if a.sender != b.sender or a.round != b.round or a.update_hash == b.update_hash:
        raise EvidenceFileError("not an equivocation: the envelopes need one sender, one round, two update hashes")
    return {"format": FORMAT, "federation": a.federation, "chain_id": a.chain_id, "member": a.sender,
            "round": a.round, "envelopes": ["0x" + a.to_bytes().hex(), "0x" + b.to_bytes().hex()]}


def _envelope(text: Any, index: int) -> Envelope:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
        message = decode_message(raw)
    except (AttributeError, ValueError, EnvelopeError) as exc:
        raise EvidenceFileError(f"envelopes[{index}] is not a signed gossip envelope in hex: {exc}") from exc
    if not isinstance(message, Envelope):
        raise EvidenceFileError(f"envelopes[{index}] is a blob chunk, not an envelope")
    return message


def load_pair(path: Path) -> tuple[Envelope, Envelope]:
    """The two envelopes of an evidence file, checked against what the file claims."""
    try:
        if path.stat().st_size > MAX_FILE:
            raise EvidenceFileError(f"{path} is larger than {MAX_FILE} bytes")
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise EvidenceFileError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise EvidenceFileError(f"{path} is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise EvidenceFileError(f"{path} is not a {FORMAT} document")
    envs = doc.get("envelopes")
    if not isinstance(envs, list) or len(envs) != 2:
        raise EvidenceFileError("'envelopes' must hold exactly two hex envelopes")
    a, b = _envelope(envs[0], 0), _envelope(envs[1], 1)
    claimed = evidence_json(a, b)
    for key in ("federation", "chain_id", "member", "round"):
        if key in doc and str(doc[key]).lower() != str(claimed[key]).lower():
            raise EvidenceFileError(f"'{key}' says {doc[key]} but the envelopes say {claimed[key]}")
    return a, b


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
