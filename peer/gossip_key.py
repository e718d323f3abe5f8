"""The node's libp2p identity: a 32-byte Ed25519 seed kept in the state dir, so its peer id survives restarts
(and the federation bootstrap can hand every peer the others' full multiaddrs before they start)."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from peer.state import atomic_write_bytes


def gossip_seed(state_dir: str | os.PathLike) -> bytes:
    """The node's libp2p key seed (32 bytes), created once in `<state_dir>/node/gossip.key` (0600)."""
    path = Path(state_dir) / "node" / "gossip.key"
    try:
        seed = bytes.fromhex(path.read_text().strip())
        if len(seed) == 32:
            return seed
    except (FileNotFoundError, ValueError):
        pass
    seed = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, seed.hex().encode())
    os.chmod(path, 0o600)
    return seed


def gossip_peer_id(seed: bytes) -> str:
    """The libp2p peer id (base58) of the key derived from `seed`."""
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(create_new_key_pair(seed).public_key))
