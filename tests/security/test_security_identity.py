"""Hostile cases for identity files: tampered keystore / X25519 file, swapped halves, malformed JSON.

Every one is a clear `IdentityError` (or `WrongPassword`) and never yields keys other than the ones created.
"""
from __future__ import annotations

import json

import pytest

from peer.crypto.identity import IdentityError, PeerIdentity, WrongPassword

FAST = 2**10


@pytest.fixture
def ident_dir(tmp_path):
    d = tmp_path / "peer"
    PeerIdentity.create(d, "pw", scrypt_n=FAST)
    return d


def _edit(path, change):
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _flip_hex(text: str) -> str:
    return ("0" if text[0] != "0" else "1") + text[1:]


@pytest.mark.parametrize("change, error, match", [
    (lambda d: d["crypto"].__setitem__("ciphertext", _flip_hex(d["crypto"]["ciphertext"])), WrongPassword, "wrong"),
    (lambda d: d["crypto"].__setitem__("mac", _flip_hex(d["crypto"]["mac"])), WrongPassword, "wrong"),
    (lambda d: d.pop("crypto"), IdentityError, "keystore"),
    (lambda d: d["crypto"]["kdfparams"].__setitem__("salt", "zz"), IdentityError, "keystore"),
])
def test_tampered_or_malformed_keystore(ident_dir, change, error, match):
    _edit(ident_dir / "keystore.json", change)
    with pytest.raises(error, match=match):
        PeerIdentity.load(ident_dir, "pw")


@pytest.mark.parametrize("change, error, match", [
    (lambda d: d["crypto"].__setitem__("ciphertext", _flip_hex(d["crypto"]["ciphertext"])), WrongPassword, "wrong"),
    (lambda d: d["crypto"].__setitem__("nonce", _flip_hex(d["crypto"]["nonce"])), WrongPassword, "wrong"),
    # the public key is authenticated: substituting someone else's makes decryption fail
    (lambda d: d.__setitem__("public_key", "11" * 32), WrongPassword, "does not belong"),
    (lambda d: d["crypto"]["kdfparams"].__setitem__("n", 2**4), WrongPassword, "wrong"),
    (lambda d: d["crypto"]["kdfparams"].__setitem__("n", 1000), IdentityError, "malformed"),  # not a power of 2
    (lambda d: d.__setitem__("format", "something-else/1"), IdentityError, "unknown format"),
    (lambda d: d.pop("crypto"), IdentityError, "malformed"),
    (lambda d: d.__setitem__("public_key", "not hex"), IdentityError, "malformed"),
])
def test_tampered_or_malformed_x25519_file(ident_dir, change, error, match):
    _edit(ident_dir / "x25519.json", change)
    with pytest.raises(error, match=match):
        PeerIdentity.load(ident_dir, "pw")


def test_x25519_file_of_another_identity_relabelled_with_our_address(tmp_path):
    """Copying another identity's X25519 file and rewriting its address field to ours: the address is in the
    AEAD's associated data, so decryption fails rather than silently pairing the keys."""
    a = PeerIdentity.create(tmp_path / "a", "pw", scrypt_n=FAST)
    PeerIdentity.create(tmp_path / "b", "pw", scrypt_n=FAST)
    doc = json.loads((tmp_path / "b" / "x25519.json").read_text())
    doc["address"] = a.address
    (tmp_path / "a" / "x25519.json").write_text(json.dumps(doc))
    with pytest.raises(WrongPassword, match="does not belong"):
        PeerIdentity.load(tmp_path / "a", "pw")


@pytest.mark.parametrize("name", ["keystore.json", "x25519.json"])
def test_unreadable_json(ident_dir, name):
    (ident_dir / name).write_text("{not json")
    with pytest.raises(IdentityError, match="cannot read identity"):
        PeerIdentity.load(ident_dir, "pw")
