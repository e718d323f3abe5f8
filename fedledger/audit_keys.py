"""The auditor's key (to unseal committed updates) and saved gossip evidence, for `audit verify` and `audit report`.

Composition root: wires the peer's unsealing, identity and evidence code into the auditor (`ledger_tools` may
not import `peer`).
"""
from __future__ import annotations

from pathlib import Path

from rich.console import Console

from fedledger.endpoints import unlock_identity
from fedledger.errors import UserError


def auditor_unseal(history, key_file: Path | None, state_dir: Path | None, password_file: Path | None):
    """The injected unseal callable: the auditor's (or a member's) X25519 key, checked against the chain first."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from ledger_tools.audit.auditor_key import UnregisteredKey, key_owner
    from peer.crypto.seal import unseal

    if (key_file is None) == (state_dir is None):
        raise UserError("verify needs exactly one key source",
                        hint="pass --key-file FILE (hex X25519 private key) or --state-dir DIR (auditor identity)",
                        exit_code=2)
    address = None
    if key_file is not None:
        try:
            raw = bytes.fromhex(key_file.read_text().strip().removeprefix("0x"))
            private = X25519PrivateKey.from_private_bytes(raw)
        except OSError as exc:
            raise UserError(f"cannot read key file {key_file}: {exc.strerror}",
                            hint="--key-file names a file holding the hex X25519 private key", exit_code=2) from exc
        except ValueError as exc:
            raise UserError(f"{key_file} does not hold a 32-byte hex X25519 private key",
                            hint="or pass --state-dir DIR with an identity made by `fedledger peer init`") from exc
    else:
        identity = unlock_identity(state_dir, password_file)
        private, address = identity.enc_private_key, identity.address
    public = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    try:
        address = key_owner(history, public, address, key_source=f"the X25519 key in {key_file}")
    except UnregisteredKey as exc:
        hint = ("wrong key: use the key registered for your auditor address" if key_file is not None
                else "wrong key: use the identity whose key was registered on chain")
        raise UserError(str(exc), hint=hint) from None

    def _unseal(blob: bytes, sender: str, round_: int) -> bytes:
        return unseal(blob, address, private, federation=history.address, round=round_, sender=sender)

    return _unseal, address


def load_evidence(directory: Path | None, history, console: Console):
    """Signed gossip envelopes saved by peers, admitted under the gossip topic's rules (`peer.net.evidence`)."""
    if directory is None:
        return []
    from peer.net.evidence import load_evidence as admit_evidence

    claims, ignored = admit_evidence(directory, history)
    for item in ignored:
        console.print(f"[yellow]ignoring evidence {item.source}: {item.reason}[/]")
    return claims
