"""The `fedledger` command: a thin root that mounts one sub-app per area.

Each sub-app lives in its own module so areas can grow independently. Areas import heavy libraries
(torch, web3, libp2p), so `main()` imports only the area named on the command line: `fedledger audit
rounds` must not pay for torch. `fedledger.cli.app` (used by tests through typer's CliRunner) is the
full app with every area mounted, built on first access.
"""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape

from fedledger.errors import DEBUG_ENV, EXIT_INTERNAL, EXIT_INTERRUPTED, INTERNAL_HINT, UserError

# (module, attribute, command name) — each module exposes a typer app or a command function.
_SUBAPPS = [
    ("fedledger.devnet_cmd", "app", "devnet"),
    ("fedledger.peer_cmd", "app", "peer"),
    ("fedledger.audit_cmd", "app", "audit"),
    ("fedledger.rewards_cmd", "app", "rewards"),
    ("fedledger.gov_cmd", "app", "gov"),
]
_COMMANDS = [
    ("fedledger.demo", "demo", "demo"),
    ("fedledger.simulate", "simulate", "simulate"),
]
_NAMES = {name for _, _, name in _SUBAPPS + _COMMANDS}


def _version() -> None:
    """Print the fedledger version."""
    from importlib.metadata import version as _v

    print(_v("fedledger"))


def build_app(selected: str | None = None) -> typer.Typer:
    """The root app with every area mounted, or only `selected` (plus `version`)."""
    root = typer.Typer(
        name="fedledger",
        help="Blockchain-audited decentralized federated learning.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
    )
    root.command(name="version")(_version)
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
            root.add_typer(getattr(module, attr), name=name)
        else:
            root.command(name=name)(getattr(module, attr))
    return root


_full_app: typer.Typer | None = None


def __getattr__(name: str) -> Any:  # PEP 562: `from fedledger.cli import app` builds the full app lazily
    global _full_app
    if name == "app":
        if _full_app is None:
            _full_app = build_app()
        return _full_app
    raise AttributeError(name)


def report_error(exc: BaseException, err: Console) -> int:
    """Print `exc` as one error line and a hint on `err`; return the exit code (README, "CLI exit codes").

    A known service failure that escaped its command (an unreachable RPC, a server that is not an Ethereum
    node, a contract that is not ours) still gets its own line; anything else is an internal error (exit 70)."""
    from fedledger.service_errors import as_user_error

    user = as_user_error(exc)
    if user is None:
        user = UserError(f"internal error: {type(exc).__name__}: {_one_line(str(exc))}", hint=INTERNAL_HINT,
                         exit_code=EXIT_INTERNAL)
    err.print(f"[bold red]error:[/] {escape(_one_line(user.message))}", soft_wrap=True)
    if user.hint:
        err.print(f"[dim]hint: {escape(_one_line(user.hint))}[/]", soft_wrap=True)
    return user.exit_code


def _one_line(text: str, limit: int = 400) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[:limit] + "…"


def main() -> None:
    """Entry point: expected failures become one red line + hint, exit code from the error."""
    err = Console(stderr=True)
    first = next((arg for arg in sys.argv[1:] if not arg.startswith("-")), None)
    try:
        root = build_app(first if first in _NAMES else None)
        root()
    except KeyboardInterrupt:
        err.print("[yellow]interrupted[/]")
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # noqa: BLE001 - the last resort: one line + hint, never a traceback (unless debugging)
        if os.environ.get(DEBUG_ENV) and not isinstance(exc, UserError):
            raise
        sys.exit(report_error(exc, err))


if __name__ == "__main__":  # `python -m fedledger.cli`: our packages, not same-named folders in the cwd
    from fedledger.module_path import isolate_from_cwd

    isolate_from_cwd()
    main()
