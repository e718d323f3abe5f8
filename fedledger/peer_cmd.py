"""`fedledger peer …`: a member institution's node: `init` / `id` (its keys), `run` (fedledger.peer_run)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from fedledger.errors import EXIT_BAD_INPUT, UserError

app = typer.Typer(help="Run a peer node: keys, local training, the round loop.", no_args_is_help=True)

PASSWORD_ENV = "FEDLEDGER_PASSWORD"


def read_password(password_file: Path | None, *, confirm: bool) -> str:
    """Password from --password-file, else $FEDLEDGER_PASSWORD, else an interactive prompt."""
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UserError(f"cannot read password file {password_file}: {exc.strerror}",
                            hint="--password-file names a text file holding the password", exit_code=EXIT_BAD_INPUT
                            ) from exc
    elif os.environ.get(PASSWORD_ENV):
        password = os.environ[PASSWORD_ENV]
    elif sys.stdin.isatty():
        password = typer.prompt("Keystore password", hide_input=True, confirmation_prompt=confirm)
    else:
        raise UserError(
            "no password given",
            hint=f"pass --password-file FILE or set {PASSWORD_ENV}",
            exit_code=2,
        )
    if not password:
        raise UserError("the password is empty", hint="use a non-empty password", exit_code=2)
    return password


def config_file_error(path: Path, exc: Exception) -> UserError:
    """`peer run --config FILE` that is missing, a folder, unreadable, not UTF-8 or not TOML, as one line."""
    if isinstance(exc, FileNotFoundError):
        return UserError(f"config file not found: {path}", hint="pass the peer.toml `fedledger devnet` wrote",
                         exit_code=EXIT_BAD_INPUT)
    if isinstance(exc, OSError):
        why = "is a folder" if path.is_dir() else f"cannot be read ({exc.strerror or exc})"
        return UserError(f"--config {path} {why}", hint="pass the peer's TOML file, e.g. peer.toml",
                         exit_code=EXIT_BAD_INPUT)
    why = "is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else f"is not valid TOML ({exc})"
    return UserError(f"--config {path} {why}", hint="peer.toml is TOML (key = \"value\" lines; see docs/devnet.md)",
                     exit_code=EXIT_BAD_INPUT)


def _check_announce(announce: str | None) -> None:
    if announce is None:
        return
    from peer.net.gossip_addr import ANNOUNCE_HINT, GossipAddressError, check_announce

    try:
        check_announce(announce)
    except GossipAddressError as exc:
        raise UserError(str(exc), hint=ANNOUNCE_HINT, exit_code=2) from exc


def _gossip_identity(state_dir: Path, announce: str | None) -> dict[str, str | None]:
    """The peer id of the node's libp2p key (created if missing) and, with `announce`, the full multiaddr."""
    from peer.net.gossip_addr import with_peer_id
    from peer.net.gossip_key import gossip_peer_id, gossip_seed

    peer_id = gossip_peer_id(gossip_seed(state_dir))
    return {"peer_id": peer_id, "multiaddr": with_peer_id(announce, peer_id) if announce else None}


_ANNOUNCE_HELP = ("The multiaddr other peers dial to reach this one, e.g. /ip4/192.0.2.10/tcp/4001 "
                  "(pass the same to `peer run --announce`); prints the full multiaddr to hand out.")


def _print_identity(title: str, rows: dict[str, str | None], subtitle: str) -> None:
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # never truncate a key the operator must copy
    for key, value in rows.items():
        table.add_row(f"[bold]{key}[/]", value or "[dim](pass --announce to print it)[/]")
    Console().print(Panel(table, title=title, subtitle=subtitle))


@app.command()
def init(
    state_dir: Path = typer.Option(..., "--state-dir", help="The peer's state directory (created if missing)."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help=f"File holding the keystore password (else ${PASSWORD_ENV}, else a prompt)."
    ),
    announce: str | None = typer.Option(None, "--announce", help=_ANNOUNCE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the public part as JSON."),
) -> None:
    """Create the peer's keys and print the public part for admission.

    Keys: an Ethereum account and an X25519 encryption key (`enc_key`), both protected by a password you
    choose now (prompted, or --password-file / $FEDLEDGER_PASSWORD) that `peer run` asks for again; and the
    libp2p key of the gossip node, whose peer id (and multiaddr, with --announce) the other peers dial.
    """
    from peer.crypto.identity import IdentityError, IdentityExists, PeerIdentity

    _check_announce(announce)  # refuse a bad address before anything is written
    password = read_password(password_file, confirm=True)
    try:
        identity = PeerIdentity.create(state_dir, password)
        gossip = _gossip_identity(state_dir, announce)
    except IdentityExists as exc:
        raise UserError(str(exc), hint="use another --state-dir; existing keys are never overwritten") from exc
    except IdentityError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot write to {state_dir}: {exc.strerror}",
                        hint="--state-dir names a folder (created if missing) this user can write",
                        exit_code=EXIT_BAD_INPUT) from exc

    info = identity.public_info()
    if as_json:
        typer.echo(json.dumps({**info, **gossip, "state_dir": str(state_dir)}))
        return
    _print_identity("peer identity created",
                    {"address": info["address"], "enc_key": info["enc_key"], "peer id": gossip["peer_id"],
                     "multiaddr": gossip["multiaddr"], "state dir": str(state_dir)},
                    "address + enc_key: to the admin; multiaddr: to the other peers")


@app.command("id")
def show_id(
    state_dir: Path = typer.Option(..., "--state-dir", help="The peer's state directory."),
    announce: str | None = typer.Option(None, "--announce", help=_ANNOUNCE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print as JSON."),
) -> None:
    """Print an existing peer's address, enc_key, libp2p peer id and multiaddr (no password needed)."""
    from peer.crypto.identity import PUBLIC_FILE

    try:
        info = json.loads((state_dir / PUBLIC_FILE).read_text())
    except FileNotFoundError as exc:
        raise UserError(f"no peer identity in {state_dir}", hint="run `fedledger peer init --state-dir DIR`") from exc
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read {state_dir / PUBLIC_FILE}: {getattr(exc, 'strerror', None) or exc}",
                        hint="pass the --state-dir folder `fedledger peer init` made") from exc
    _check_announce(announce)
    gossip = _gossip_identity(state_dir, announce)
    if as_json:
        typer.echo(json.dumps({**info, **gossip, "state_dir": str(state_dir)}))
        return
    _print_identity("peer identity", {"address": info.get("address"), "enc_key": info.get("enc_key"),
                                      "peer id": gossip["peer_id"], "multiaddr": gossip["multiaddr"]},
                    "multiaddr: what the other peers pass to --bootstrap")


from fedledger import peer_run as _peer_run  # noqa: E402,F401  registers `peer run`
from fedledger import stake_cmd as _stake_cmd  # noqa: E402,F401  registers `peer stake|withdraw`
