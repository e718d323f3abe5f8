"""Peers keep the proof when a member signs what it cannot stand by: two envelopes of one round with two update
hashes (equivocation), or an envelope naming another update than the one it committed on chain (commitment
mismatch). Both are slashable by anyone holding the signed envelopes.

Attached to a node's `GossipStore`, the recorder looks at every accepted envelope of another member; when the
sender already has an envelope for that round naming another update hash, it writes

- `<dir>/<round>-<sender>.json`: the equivocation evidence (`peer.net.slash_evidence`, docs/governance.md), ready
  for `fedledger gov slash --evidence FILE` by anyone;
- `<dir>/envelopes/<round>-<sender>-<hash>.env`: both envelopes' raw wire bytes, for
  `fedledger audit verify --evidence <dir>/envelopes`.

When a round's commitments are read (`peer.loop.collect`), `save_mismatch_evidence` writes
`<dir>/<round>-<sender>-mismatch.json` (and the envelope's `.env`) for every envelope naming another update hash
than its sender's commitment of that round, with the sender's signed commit transaction when it can be read (the
proof of what it committed; `gov slash` reads it from the chain otherwise). It stays valid for good: the
transaction is on chain, and the ledger keeps no per-member state a later commit would overwrite.

Files are written once (atomically) per (round, sender, offence); the callers only write locally.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ledger_tools.chain.signed_tx import SignedTx
from peer.net.envelope import Envelope
from peer.net.gossip_store import GossipStore
from peer.net.slash_evidence import evidence_json, mismatch_json

log = logging.getLogger("fedledger.evidence")


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def _save(directory: Path, name: str, doc: dict[str, Any], envelopes: Iterable[Envelope]) -> None:
    """`<directory>/<name>.json` and each envelope's wire bytes under `envelopes/` (OSError propagates)."""
    _write_once(directory / f"{name}.json", json.dumps(doc, indent=1).encode())
    for e in envelopes:
        stem = f"{e.round}-{e.sender}-{e.update_hash.hex()[:10]}"
        _write_once(directory / "envelopes" / f"{stem}.env", e.to_bytes())


def save_mismatch_evidence(directory: Path | str, envelopes: Iterable[Envelope], committed: Mapping[str, bytes],
                           commit_tx: Callable[[str], SignedTx] | None = None) -> list[Path]:
    """Write the commitment-mismatch evidence of every envelope whose update hash is not the one its sender
    committed on chain (`committed`: member -> update hash, of the envelope's round); the files written.
    Envelopes of members without a commitment, or naming the committed update, are skipped. `commit_tx`
    (member -> its signed commit transaction of that round) adds the proof of the commitment to the file."""
    directory = Path(directory)
    written = []
    for env in envelopes:
        want = committed.get(env.sender)
        if want is None or want == env.update_hash:
            continue
        path = directory / f"{env.round}-{env.sender}-mismatch.json"
        if path.exists():
            continue
        tx = None
        if commit_tx is not None:
            try:
                tx = commit_tx(env.sender)
            except Exception as exc:  # noqa: BLE001 - a node error only drops the optional proof from the file
                log.warning("cannot read the commit transaction of %s in round %d: %s", env.sender, env.round, exc)
        try:
            _save(directory, path.stem, mismatch_json(env, committed=want, commit_tx=tx), [env])
        except OSError as exc:
            log.warning("cannot save commitment-mismatch evidence of %s in round %d: %s", env.sender, env.round, exc)
            continue
        log.warning("commitment-mismatch evidence of %s in round %d saved to %s", env.sender, env.round, path)
        written.append(path)
    return written


class EquivocationRecorder:
    """Write the evidence of every equivocation a gossip store accepts (see module docstring)."""

    def __init__(self, directory: Path | str) -> None:
        self.directory = Path(directory)
        self.store: GossipStore | None = None

    def attach(self, store: GossipStore) -> "EquivocationRecorder":
        """Chain onto the store's envelope callback (the node's bulk fetch keeps running first)."""
        inner = store.on_envelope
        self.store = store

        def on_envelope(envelope: Envelope, origin: str | None) -> None:
            if inner is not None:
                inner(envelope, origin)
            self.seen(envelope)

        store.on_envelope = on_envelope
        return self

    def seen(self, envelope: Envelope) -> Path | None:
        """Record `envelope` if it contradicts an earlier one of its sender and round; the evidence file or None."""
        if self.store is None:
            return None
        earlier = next((e for e in self.store.envelopes(envelope.round)
                        if e.sender == envelope.sender and e.update_hash != envelope.update_hash), None)
        if earlier is None:
            return None
        name = f"{envelope.round}-{envelope.sender}"
        path = self.directory / f"{name}.json"
        try:
            _save(self.directory, name, evidence_json(earlier, envelope), (earlier, envelope))
        except OSError as exc:
            log.warning("cannot save equivocation evidence of %s in round %d: %s", envelope.sender, envelope.round,
                        exc)
            return None
        log.warning("equivocation evidence of %s in round %d saved to %s", envelope.sender, envelope.round, path)
        return path
