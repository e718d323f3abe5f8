"""A peer's identity: an Ethereum account (chain transactions, gossip envelope signatures) and an
X25519 key pair (sealed updates addressed to this member).

On disk, in the peer's state directory:

- ``keystore.json``  — the Ethereum private key as a standard eth-account v3 keystore (scrypt + AES-128-CTR).
- ``x25519.json``    — the X25519 private key, keystore-like: scrypt(password) → AES-256-GCM, with the
                       account address and the public key as associated data (the two keys can't be swapped
                       between identities without the decryption failing).
- ``identity.json``  — the public part (``address``, ``enc_key``: the X25519 public key as 0x-hex, the name the
                       federation config and the contract use): what an operator hands to admission.

Both secrets are protected by the same password. Files are written with mode 0600.
"""
from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from eth_account import Account
from eth_account.signers.local import LocalAccount

from peer.errors import PeerError

KEYSTORE_FILE = "keystore.json"
X25519_FILE = "x25519.json"
PUBLIC_FILE = "identity.json"
X25519_FORMAT = "fedledger-x25519-keystore/1"

#: scrypt cost for both secrets (eth-account's default). Tests pass a smaller value to stay fast.
DEFAULT_SCRYPT_N = 2**18


class IdentityError(PeerError):
    """Any failure to create or load a peer identity (message says which file and why)."""


class IdentityExists(IdentityError):
    """`create` refused to overwrite an identity already present in the state directory."""


class IdentityNotFound(IdentityError):
    """`load` found no identity in the state directory."""


class WrongPassword(IdentityError):
    """The password does not decrypt the keystore."""


def _raw_public(key: X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )


def _scrypt(password: str, salt: bytes, n: int) -> bytes:
    return Scrypt(salt=salt, length=32, n=n, r=8, p=1).derive(password.encode("utf-8"))


def _x25519_aad(address: str, public: bytes) -> bytes:
    return b"fedledger/x25519-keystore/1|" + bytes.fromhex(address[2:]) + public


def _encrypt_x25519(private: X25519PrivateKey, address: str, password: str, n: int) -> dict:
    public = _raw_public(private.public_key())
    salt, nonce = secrets.token_bytes(16), secrets.token_bytes(12)
    ciphertext = AESGCM(_scrypt(password, salt, n)).encrypt(
        nonce, _raw_private(private), _x25519_aad(address, public)
    )
    return {
        "format": X25519_FORMAT,
        "address": address,
        "public_key": public.hex(),
        "crypto": {
            "kdf": "scrypt",
            "kdfparams": {"n": n, "r": 8, "p": 1, "dklen": 32, "salt": salt.hex()},
            "cipher": "aes-256-gcm",
            "nonce": nonce.hex(),
            "ciphertext": ciphertext.hex(),
        },
    }


def _decrypt_x25519(doc: dict, address: str, password: str, path: Path) -> X25519PrivateKey:
    try:
        if doc.get("format") != X25519_FORMAT:
            raise IdentityError(f"{path}: unknown format {doc.get('format')!r}, expected {X25519_FORMAT!r}")
        crypto = doc["crypto"]
        params = crypto["kdfparams"]
        public = bytes.fromhex(doc["public_key"])
        key = _scrypt(password, bytes.fromhex(params["salt"]), int(params["n"]))
        nonce, ciphertext = bytes.fromhex(crypto["nonce"]), bytes.fromhex(crypto["ciphertext"])
    except (KeyError, ValueError, TypeError) as exc:
        raise IdentityError(f"{path}: malformed X25519 keystore ({exc})") from exc
    try:
        raw = AESGCM(key).decrypt(nonce, ciphertext, _x25519_aad(address, public))
    except InvalidTag as exc:
        raise WrongPassword(
            f"{path}: wrong password (or the file does not belong to account {address})"
        ) from exc
    private = X25519PrivateKey.from_private_bytes(raw)
    if _raw_public(private.public_key()) != public:
        raise IdentityError(f"{path}: stored public key does not match the private key")
    return private


def _write_private(path: Path, doc: dict) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(doc, fh, indent=2)
        fh.write("\n")


@dataclass(frozen=True)
class PeerIdentity:
    """An unlocked peer identity (holds private keys in memory)."""

    account: LocalAccount
    enc_private_key: X25519PrivateKey
    state_dir: Path | None = None

    @property
    def address(self) -> str:
        """Checksummed Ethereum address (the member's id on chain and in gossip)."""
        return self.account.address

    @property
    def enc_public_key(self) -> bytes:
        """Raw 32-byte X25519 public key (the `bytes32 encKey` registered on chain)."""
        return _raw_public(self.enc_private_key.public_key())

    def public_info(self) -> dict[str, str]:
        """What an operator hands to the federation's admission."""
        return {"address": self.address, "enc_key": "0x" + self.enc_public_key.hex()}

    @classmethod
    def generate(cls) -> "PeerIdentity":
        """Fresh in-memory identity (nothing written; for tests and simulations)."""
        return cls(Account.create(), X25519PrivateKey.generate())

    @classmethod
    def exists(cls, state_dir: str | os.PathLike) -> bool:
        d = Path(state_dir)
        return any((d / name).exists() for name in (KEYSTORE_FILE, X25519_FILE))

    @classmethod
    def create(
        cls, state_dir: str | os.PathLike, password: str, *, scrypt_n: int | None = None
    ) -> "PeerIdentity":
        """Generate keys and write them, password-protected, into `state_dir` (created if missing).

        Refuses (IdentityExists) when the directory already holds an identity. `scrypt_n` defaults to
        DEFAULT_SCRYPT_N (2**18, ~1 s per unlock).
        """
        scrypt_n = DEFAULT_SCRYPT_N if scrypt_n is None else scrypt_n
        if not password:
            raise IdentityError("refusing to create an identity with an empty password")
        d = Path(state_dir)
        if cls.exists(d):
            raise IdentityExists(f"{d} already holds a peer identity; refusing to overwrite it")
        d.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity = cls.generate()
        identity = cls(identity.account, identity.enc_private_key, d)
        keystore = Account.encrypt(identity.account.key, password, kdf="scrypt", iterations=scrypt_n)
        _write_private(d / KEYSTORE_FILE, keystore)
        _write_private(
            d / X25519_FILE, _encrypt_x25519(identity.enc_private_key, identity.address, password, scrypt_n)
        )
        (d / PUBLIC_FILE).write_text(json.dumps(identity.public_info(), indent=2) + "\n")
        return identity

    @classmethod
    def load(cls, state_dir: str | os.PathLike, password: str) -> "PeerIdentity":
        """Unlock the identity in `state_dir`; WrongPassword / IdentityNotFound / IdentityError otherwise."""
        d = Path(state_dir)
        ks_path, x_path = d / KEYSTORE_FILE, d / X25519_FILE
        for path in (ks_path, x_path):
            if not path.exists():
                raise IdentityNotFound(f"no peer identity in {d} ({path.name} missing); run `fedledger peer init`")
        try:
            keystore = json.loads(ks_path.read_text())
            x_doc = json.loads(x_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise IdentityError(f"cannot read identity in {d}: {exc}") from exc
        try:
            key = Account.decrypt(keystore, password)
        except ValueError as exc:  # eth-keyfile raises a ValueError subclass ("MAC mismatch")
            if "MAC mismatch" in str(exc):
                raise WrongPassword(f"{ks_path}: wrong password") from exc
            raise IdentityError(f"{ks_path}: malformed keystore ({exc})") from exc
        except (KeyError, TypeError) as exc:
            raise IdentityError(f"{ks_path}: malformed keystore ({exc})") from exc
        account = Account.from_key(key)
        stored = x_doc.get("address", "")
        if stored.lower() != account.address.lower():
            raise IdentityError(
                f"{x_path}: belongs to {stored or 'an unknown account'}, keystore is {account.address}"
            )
        return cls(account, _decrypt_x25519(x_doc, account.address, password, x_path), d)

    def __repr__(self) -> str:  # never print key material
        return f"PeerIdentity(address={self.address}, enc_public_key=0x{self.enc_public_key.hex()})"
