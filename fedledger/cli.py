"""The `fedledger` command: a thin root that mounts one sub-app per area.

Each sub-app lives in its own module so areas can grow independently; a module that fails to
import (e.g. an optional area under construction) must not take the whole CLI down.
"""
from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console

from fedledger.errors import UserError

app = typer.Typer(
    name="fedledger",
    help="Blockchain-audited decentralized federated learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

# (module, attribute, command name) — each module exposes a typer app or a command function.
_SUBAPPS = [
    ("fedledger.devnet_cmd", "app", "devnet"),
    ("fedledger.peer_cmd", "app", "peer"),
    ("fedledger.audit_cmd", "app", "audit"),
    ("fedledger.rewards_cmd", "app", "rewards"),
]
_COMMANDS = [
    ("fedledger.demo", "demo", "demo"),
    ("fedledger.simulate", "simulate", "simulate"),
]

def _mount(selected: str | None) -> None:
    """Import only the area the user asked for (all of them for root help).

    Areas import heavy libraries (torch, web3, libp2p); `fedledger audit rounds` must not pay for torch.
    """
    for module_name, attr, name in _SUBAPPS + _COMMANDS:
        if selected is not None and name != selected:
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        if (module_name, attr, name) in _SUBAPPS:
            app.add_typer(getattr(module, attr), name=name)
        else:
            app.command(name=name)(getattr(module, attr))


@app.command()
def version() -> None:
    """Print the fedledger version."""
    from importlib.metadata import version as _v

    print(_v("fedledger"))


def main() -> None:
    """Entry point: expected failures become one red line + hint, exit code from the error."""
    err = Console(stderr=True)
    known = {name for _, _, name in _SUBAPPS + _COMMANDS}
    first = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    _mount(first if first in known else None)
    try:
        app()
    except UserError as exc:
        err.print(f"[bold red]error:[/] {exc.message}")
        if exc.hint:
            err.print(f"[dim]hint: {exc.hint}[/]")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(130)


if __name__ == "__main__":
    main()
