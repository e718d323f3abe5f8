"""Peer identity: keystore creation, unlocking, wrong password, refusal to overwrite, `fedledger peer init`."""
from __future__ import annotations

import json
import stat

import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from typer.testing import CliRunner

from peer.crypto.identity import (
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
    import peer.crypto.identity

    monkeypatch.setattr(peer.crypto.identity, "DEFAULT_SCRYPT_N", FAST)


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
    assert info["enc_key"] == "0x" + loaded.enc_public_key.hex()  # the name the federation config uses
    assert info["multiaddr"] is None and info["peer_id"].startswith("12D3KooW")  # no --announce: no multiaddr

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


def test_cli_init_creates_the_libp2p_key_outside_the_round_state(tmp_path, fast_scrypt, monkeypatch):
    """`peer init --announce` prints the peer id and full multiaddr; `peer id` repeats them; the key file sits
    next to the keystore, so deleting the round state (node/) keeps the peer id the others dial."""
    import shutil

    from fedledger.cli import app
    from peer.net.gossip_key import gossip_peer_id, gossip_seed

    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    state, announce = tmp_path / "s", "/ip4/192.0.2.10/tcp/4001"
    runner = CliRunner()
    result = runner.invoke(app, ["peer", "init", "--state-dir", str(state), "--announce", announce, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["multiaddr"] == f"{announce}/p2p/{info['peer_id']}"
    assert stat.S_IMODE((state / "libp2p.key").stat().st_mode) == 0o600
    assert gossip_peer_id(gossip_seed(state)) == info["peer_id"]  # the key build_node gives the gossip node

    (state / "node").mkdir()
    (state / "node" / "state.json").write_text("{}")
    shutil.rmtree(state / "node")  # an operator starting over
    shown = runner.invoke(app, ["peer", "id", "--state-dir", str(state), "--announce", announce, "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout) == info

    human = runner.invoke(app, ["peer", "id", "--state-dir", str(state), "--announce", announce],
                          env={"COLUMNS": "200"})
    assert info["peer_id"] in human.stdout and info["multiaddr"] in human.stdout and "enc_key" in human.stdout


def test_cli_init_refuses_an_undialable_announce_address_before_writing(tmp_path, fast_scrypt, monkeypatch):
    from fedledger.cli import app

    monkeypatch.setenv("FEDLEDGER_PASSWORD", "pw")
    result = CliRunner().invoke(app, ["peer", "init", "--state-dir", str(tmp_path / "s"),
                                      "--announce", "/ip4/0.0.0.0/tcp/4001"])
    error = result.exception  # `fedledger.cli.main` prints it as "error: ..." + "hint: ..."
    assert error.exit_code == 2 and "not dialable" in error.message and "--announce" in error.hint
    assert not (tmp_path / "s").exists()


def test_a_key_in_the_old_location_keeps_its_peer_id(tmp_path):
    from peer.net.gossip_key import gossip_peer_id, gossip_seed

    seed = bytes(range(32))
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "gossip.key").write_text(seed.hex())
    assert gossip_seed(tmp_path) == seed and (tmp_path / "libp2p.key").exists()
    assert not (tmp_path / "node" / "gossip.key").exists()
    assert gossip_peer_id(gossip_seed(tmp_path)) == gossip_peer_id(seed)
