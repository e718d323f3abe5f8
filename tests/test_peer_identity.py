"""Peer identity: keystore creation, unlocking, wrong password, refusal to overwrite, `fedledger peer init`."""
from __future__ import annotations

import json
import stat

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from typer.testing import CliRunner

from peer.identity import (
    IdentityError,
    IdentityExists,
    IdentityNotFound,
    PeerIdentity,
    WrongPassword,
)

FAST = 2**10  # scrypt cost for tests only


def test_create_then_load_round_trips(tmp_path):
    created = PeerIdentity.create(tmp_path / "peer", "s3cret", scrypt_n=FAST)
    loaded = PeerIdentity.load(tmp_path / "peer", "s3cret")
    assert loaded.address == created.address
    assert loaded.account.key == created.account.key
    assert loaded.enc_public_key == created.enc_public_key and len(loaded.enc_public_key) == 32
    assert json.loads((tmp_path / "peer" / "identity.json").read_text()) == created.public_info()
    # the account signs, the X25519 key agrees
    sig = loaded.account.sign_message(encode_defunct(b"hello"))
    assert Account.recover_message(encode_defunct(b"hello"), signature=sig.signature) == created.address
    for name in ("keystore.json", "x25519.json"):
        assert stat.S_IMODE((tmp_path / "peer" / name).stat().st_mode) == 0o600


def test_secrets_are_not_on_disk_in_clear(tmp_path):
    ident = PeerIdentity.create(tmp_path, "pw", scrypt_n=FAST)
    from cryptography.hazmat.primitives import serialization

    raw_x = ident.enc_private_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    blob = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert raw_x.hex().encode() not in blob and ident.account.key.hex().encode() not in blob
    assert ident.account.key.hex() not in repr(ident)


def test_wrong_password_is_a_clear_error(tmp_path):
    PeerIdentity.create(tmp_path, "right", scrypt_n=FAST)
    with pytest.raises(WrongPassword, match="wrong password"):
        PeerIdentity.load(tmp_path, "wrong")


def test_x25519_file_from_another_identity_is_rejected(tmp_path):
    PeerIdentity.create(tmp_path / "a", "pw", scrypt_n=FAST)
    PeerIdentity.create(tmp_path / "b", "pw", scrypt_n=FAST)
    (tmp_path / "a" / "x25519.json").write_text((tmp_path / "b" / "x25519.json").read_text())
    with pytest.raises(IdentityError, match="belongs to"):
        PeerIdentity.load(tmp_path / "a", "pw")


def test_refuses_to_overwrite_and_missing_identity(tmp_path):
    PeerIdentity.create(tmp_path, "pw", scrypt_n=FAST)
    with pytest.raises(IdentityExists):
        PeerIdentity.create(tmp_path, "pw", scrypt_n=FAST)
    with pytest.raises(IdentityNotFound, match="peer init"):
        PeerIdentity.load(tmp_path / "nowhere", "pw")
    with pytest.raises(IdentityError, match="empty password"):
        PeerIdentity.create(tmp_path / "c", "", scrypt_n=FAST)


@pytest.fixture
def fast_scrypt(monkeypatch):
    import peer.identity

    monkeypatch.setattr(peer.identity, "DEFAULT_SCRYPT_N", FAST)


def test_cli_init_json_and_refusal(tmp_path, fast_scrypt):
    from fedledger.cli import app

    runner = CliRunner()
    pw = tmp_path / "pw.txt"
    pw.write_text("pw\n")
    state = tmp_path / "state"
    result = runner.invoke(app, ["peer", "init", "--state-dir", str(state), "--password-file", str(pw), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    loaded = PeerIdentity.load(state, "pw")
    assert info["address"] == loaded.address
    assert info["enc_public_key"] == "0x" + loaded.enc_public_key.hex()

    again = runner.invoke(app, ["peer", "init", "--state-dir", str(state), "--password-file", str(pw)])
    assert again.exit_code != 0
    assert PeerIdentity.load(state, "pw").address == loaded.address  # untouched


def test_cli_init_password_from_env_and_panel(tmp_path, fast_scrypt, monkeypatch):
    from fedledger.cli import app

    monkeypatch.setenv("FEDLEDGER_PASSWORD", "envpw")
    result = CliRunner().invoke(app, ["peer", "init", "--state-dir", str(tmp_path / "s")])
    assert result.exit_code == 0, result.output
    ident = PeerIdentity.load(tmp_path / "s", "envpw")
    assert ident.address in result.stdout


def test_cli_init_without_password_fails(tmp_path, fast_scrypt, monkeypatch):
    from fedledger.cli import app

    monkeypatch.delenv("FEDLEDGER_PASSWORD", raising=False)
    result = CliRunner().invoke(app, ["peer", "init", "--state-dir", str(tmp_path / "s")])
    assert result.exit_code != 0
    assert not (tmp_path / "s" / "keystore.json").exists()
