"""Where a federation lives (--rpc, --contract, --ipfs, --cache-dir) and who is asking (a peer identity).

Shared by the read-side command groups (`fedledger audit`, `fedledger rewards`): each mounts
`endpoint_options` as its callback and gets an `Endpoints` in `ctx.obj`. Every expected failure of reaching
the chain, the contract, IPFS or a keystore becomes one `UserError` line with a hint.
"""
from __future__ import annotations

from dataclasses import dataclass
from itertools import takewhile
from pathlib import Path
from typing import Annotated

import click
import typer
from typer.core import TyperGroup

from fedledger.errors import EXIT_BAD_INPUT, EXIT_UNREACHABLE, UserError
from fedledger.service_errors import IPFS_HINT, check_ipfs, check_url, service_errors

DEFAULT_RPC = "http://127.0.0.1:8545"
DEFAULT_IPFS = "http://127.0.0.1:5001"
HELP_ASKED = "fedledger.help_asked"  # ctx.meta key: the command line asks a subcommand for --help


@dataclass
class Endpoints:
    rpc: str
    contract: str | None
    ipfs: str
    cache_dir: Path | None

    def ledger(self):
        """A read-only binding of the federation's contract."""
        from ledger_tools.chain import FederationLedger

        if not self.contract:
            raise UserError("no contract address given",
                            hint="pass --contract 0x… (or set FEDLEDGER_CONTRACT)", exit_code=2)
        try:
            return FederationLedger(self.rpc, self.contract)
        except ValueError as exc:
            raise UserError(f"--contract {self.contract!r} is not a contract address: {_first_line(exc)}",
                            hint="pass the 0x… address `fedledger devnet deploy` printed", exit_code=2) from exc

    def store(self):
        """The IPFS node, checked to answer."""
        from ledger_tools.blobstore import BlobStoreError, IpfsBlobStore

        try:
            with service_errors(self.ipfs, service="ipfs"):  # unreachable, or a server that is not an IPFS API
                store = IpfsBlobStore(self.ipfs, timeout=30, retries=1, backoff=0.2)
                store.node_id()
        except (BlobStoreError, ValueError) as exc:
            raise UserError(f"the IPFS API at {self.ipfs} does not work: {_first_line(exc)}", hint=IPFS_HINT,
                            exit_code=EXIT_UNREACHABLE) from exc
        return store

    def load(self):
        """(ledger, history): the event cache synced and the history rebuilt from it."""
        from ledger_tools.audit.history import load_history
        from ledger_tools.chain import LedgerError
        from ledger_tools.ledger_cache import LedgerCacheError

        ledger = self.ledger()
        try:
            with service_errors(self.rpc, contract=self.contract):
                history, _ = load_history(ledger, cache_dir=self.cache_dir)
        except LedgerCacheError as exc:
            raise UserError(str(exc), hint="retry; if it persists, delete the cache (--cache-dir)") from exc
        except OSError as exc:  # the cache folder cannot be made or written
            raise UserError(f"cannot use the event cache in {self.cache_dir or '~/.cache/fedledger'}: "
                            f"{exc.strerror or exc}", hint="pass --cache-dir a writable folder",
                            exit_code=EXIT_BAD_INPUT) from exc
        except LedgerError as exc:
            raise UserError(f"reading the ledger at {self.contract} failed: {exc}") from exc
        return ledger, history


def _first_line(exc: BaseException, limit: int = 120) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "…"


def _option_arity(params: list[click.Parameter]) -> dict[str, bool]:
    """option string -> whether it takes a value, for every option of a click command."""
    out: dict[str, bool] = {}
    for param in params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                out[name] = not param.is_flag and not param.count
    return out


def _take(tokens: list[str], i: int, arity: dict[str, bool]) -> int:
    """How many tokens the option at `tokens[i]` spans (1, or 2 with a separate value)."""
    name, eq, _ = tokens[i].partition("=")
    return 2 if arity.get(name) and not eq and i + 1 < len(tokens) else 1


class EndpointGroup(TyperGroup):
    """A command group whose own options may also follow the subcommand, and whose subcommands' options may
    precede it: `audit verify --ipfs X` == `audit --ipfs X verify`, `rewards --key K claim` == `rewards claim
    --key K`. Only options the other side does not define move, so no subcommand option is ever shadowed."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        args = self._reorder(ctx, list(args))
        # the group's callback (endpoint checks) runs before the subcommand parses its --help: say it is coming
        ctx.meta[HELP_ASKED] = any(a in ctx.help_option_names for a in takewhile(lambda a: a != "--", args))
        return super().parse_args(ctx, args)

    def _reorder(self, ctx: click.Context, args: list[str]) -> list[str]:
        mine = _option_arity(self.get_params(ctx))
        i = 0
        while i < len(args) and args[i] != "--" and args[i] not in self.commands:
            i += _take(args, i, mine) if args[i].partition("=")[0] in mine else 1
        if i >= len(args) or args[i] == "--":
            return args
        command = self.commands[args[i]]
        theirs = _option_arity(command.get_params(ctx))
        head, to_sub, j = [], [], 0
        while j < i:  # before the subcommand: its options move after it
            n = _take(args, j, mine if args[j].partition("=")[0] in mine else theirs)
            name = args[j].partition("=")[0]
            (to_sub if name in theirs and name not in mine else head).extend(args[j:j + n])
            j += n
        tail, to_group, j = [], [], i + 1
        while j < len(args):  # after it: the group's options move before it
            if args[j] == "--":
                tail.extend(args[j:])
                break
            name = args[j].partition("=")[0]
            if name in mine and name not in theirs:
                n = _take(args, j, mine)
                to_group.extend(args[j:j + n])
            else:
                n = _take(args, j, theirs)
                tail.extend(args[j:j + n])
            j += n
        return head + to_group + [args[i]] + to_sub + tail


def endpoint_options(
    typer_ctx: typer.Context,
    rpc: Annotated[str, typer.Option("--rpc", "--rpc-url", envvar="FEDLEDGER_RPC",
                                     help="Ethereum JSON-RPC URL.")] = DEFAULT_RPC,
    contract: Annotated[str | None, typer.Option("--contract", envvar="FEDLEDGER_CONTRACT",
                                                    help="FederationLedger address.")] = None,
    ipfs: Annotated[str, typer.Option("--ipfs", "--ipfs-api", envvar="FEDLEDGER_IPFS",
                                      help="IPFS (Kubo RPC) API URL.")] = DEFAULT_IPFS,
    cache_dir: Annotated[Path | None, typer.Option("--cache-dir", envvar="FEDLEDGER_CACHE_DIR",
                                                  help="Event cache directory (default ~/.cache/fedledger).")] = None,
) -> None:
    """Where the federation lives (every option also reads an environment variable)."""
    typer_ctx.obj = Endpoints(rpc, contract, ipfs, cache_dir)
    if typer_ctx.meta.get(HELP_ASKED) or typer_ctx.resilient_parsing:
        return  # help must work whatever FEDLEDGER_RPC & co. hold: nothing is checked or reached for it
    check_url(rpc, "--rpc")
    check_ipfs(ipfs, "--ipfs")
    if cache_dir is not None and cache_dir.exists() and not cache_dir.is_dir():
        raise UserError(f"--cache-dir {cache_dir} is a file, not a folder",
                        hint="pass a folder (it is created if missing)", exit_code=EXIT_BAD_INPUT)


def unlock_identity(state_dir: Path, password_file: Path | None):
    """The peer identity (Ethereum account + X25519 key) in `state_dir`, unlocked; one clear line otherwise."""
    from fedledger.peer_cmd import read_password
    from peer.crypto.identity import IdentityError, PeerIdentity, WrongPassword

    try:
        return PeerIdentity.load(state_dir, read_password(password_file, confirm=False))
    except WrongPassword as exc:
        raise UserError(f"wrong key password: {exc}", hint="check --password-file / FEDLEDGER_PASSWORD") from exc
    except IdentityError as exc:
        raise UserError(str(exc), hint="pass the --state-dir made by `fedledger peer init`") from exc


def parse_round_range(text: str | None):
    """`--rounds N|A..B|A..|..B` as a `RoundRange` (None when not given); a malformed range is a usage error."""
    from ledger_tools.audit.history import RoundRange

    if not text:
        return None
    try:
        return RoundRange.parse(text)
    except ValueError as exc:
        raise UserError(f"--rounds: {exc}", hint="e.g. --rounds 3, --rounds 2..5, --rounds 4.. or --rounds ..6",
                        exit_code=2) from exc
