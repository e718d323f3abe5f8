"""`fedledger peer …`: a member institution's node (identity now; `run` is added by the round loop)."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from fedledger.errors import UserError

app = typer.Typer(help="Run a peer node: keys, local training, the round loop.", no_args_is_help=True)

PASSWORD_ENV = "FEDLEDGER_PASSWORD"


def read_password(password_file: Path | None, *, confirm: bool) -> str:
    """Password from --password-file, else $FEDLEDGER_PASSWORD, else an interactive prompt."""
    if password_file is not None:
        try:
            password = password_file.read_text().rstrip("\r\n")
        except OSError as exc:
            raise UserError(f"cannot read password file {password_file}: {exc.strerror}") from exc
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


@app.command()
def init(
    state_dir: Path = typer.Option(..., "--state-dir", help="The peer's state directory (created if missing)."),
    password_file: Path | None = typer.Option(
        None, "--password-file", help=f"File holding the keystore password (else ${PASSWORD_ENV})."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the public part as JSON."),
) -> None:
    """Create the peer's keys (Ethereum account + X25519) and print the public part for admission."""
    from peer.identity import IdentityError, IdentityExists, PeerIdentity

    password = read_password(password_file, confirm=True)
    try:
        identity = PeerIdentity.create(state_dir, password)
    except IdentityExists as exc:
        raise UserError(str(exc), hint="use another --state-dir; existing keys are never overwritten") from exc
    except IdentityError as exc:
        raise UserError(str(exc)) from exc
    except OSError as exc:
        raise UserError(f"cannot write to {state_dir}: {exc.strerror}") from exc

    info = identity.public_info()
    if as_json:
        typer.echo(json.dumps({**info, "state_dir": str(state_dir)}))
        return
    table = Table.grid(padding=(0, 2))
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # never truncate a key the operator must copy
    table.add_row("[bold]address[/]", info["address"])
    table.add_row("[bold]X25519 public key[/]", info["enc_public_key"])
    table.add_row("[bold]state dir[/]", str(state_dir))
    Console().print(
        Panel(table, title="peer identity created", subtitle="hand the address + key to the federation admin")
    )
from fedledger import peer_run as _peer_run  # noqa: E402,F401  registers `peer run`
