"""Peers keep the proof when a member equivocates: two envelopes it signed for one round with two update hashes.

Attached to a node's `GossipStore`, the recorder looks at every accepted envelope of another member; when the
sender already has an envelope for that round naming another update hash, it writes

- `<dir>/<round>-<sender>.json`: the slash evidence (`peer.net.slash_evidence`, docs/governance.md), ready for
  `fedledger gov slash --evidence FILE` by anyone;
- `<dir>/envelopes/<round>-<sender>-<hash>.env`: both envelopes' raw wire bytes, for
  `fedledger audit verify --evidence <dir>/envelopes`.

Files are written once (atomically) per (round, sender); the gossip thread calls this, so it only writes locally.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from peer.net.envelope import Envelope
from peer.net.gossip_store import GossipStore
from peer.net.slash_evidence import evidence_json

log = logging.getLogger("fedledger.evidence")


def _write_once(path: Path, data: bytes) -> None:
    if path.exists():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


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
            _write_once(path, json.dumps(evidence_json(earlier, envelope), indent=1).encode())
            for e in (earlier, envelope):
                _write_once(self.directory / "envelopes" / f"{name}-{e.update_hash.hex()[:10]}.env", e.to_bytes())
        except OSError as exc:
            log.warning("cannot save equivocation evidence of %s in round %d: %s", envelope.sender, envelope.round,
                        exc)
            return None
        log.warning("equivocation evidence of %s in round %d saved to %s", envelope.sender, envelope.round, path)
        return path
