"""The node's libp2p identity: a 32-byte Ed25519 seed kept in the state dir, so its peer id survives restarts.

`fedledger peer init` creates it next to the keystore (`<state_dir>/libp2p.key`, mode 0600), outside the
round state in `<state_dir>/node/` that an operator may delete to start over: the peer id (and so every
multiaddr handed to the other institutions) stays the same across such resets. The key only authenticates
the gossip transport (messages are signed with the Ethereum account), so it is not password-protected.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from peer.loop.state import atomic_write_bytes

KEY_FILE = "libp2p.key"
_OLD_KEY_FILE = Path("node") / "gossip.key"  # before it moved out of the resettable round state


def gossip_key_path(state_dir: str | os.PathLike) -> Path:
    return Path(state_dir) / KEY_FILE


def _read(path: Path) -> bytes | None:
    try:
        seed = bytes.fromhex(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return seed if len(seed) == 32 else None


def gossip_seed(state_dir: str | os.PathLike) -> bytes:
    """The node's libp2p key seed (32 bytes) from `<state_dir>/libp2p.key`, created there if missing."""
    path = gossip_key_path(state_dir)
    seed = _read(path)
    if seed is not None:
        return seed
    old = Path(state_dir) / _OLD_KEY_FILE
    seed = _read(old) or secrets.token_bytes(32)  # a state dir from before the move keeps its peer id
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, seed.hex().encode())
    os.chmod(path, 0o600)
    old.unlink(missing_ok=True)
    return seed


def gossip_peer_id(seed: bytes) -> str:
    """The libp2p peer id (base58) of the key derived from `seed`."""
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(create_new_key_pair(seed).public_key))
