"""Who signs a governance or stake transaction, and where the governor lives: shared by `fedledger gov` and
`fedledger peer stake|withdraw`. Every expected failure is one `UserError` line."""
from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from fedledger.endpoints import DEFAULT_RPC, unlock_identity
from fedledger.errors import EXIT_UNREACHABLE, UserError
from fedledger.service_errors import check_url, service_errors

T = TypeVar("T")

RpcOpt = Annotated[str, typer.Option("--rpc", envvar="FEDLEDGER_RPC", help="Ethereum JSON-RPC URL.")]
GovernorOpt = Annotated[str | None, typer.Option("--governor", envvar="FEDLEDGER_GOVERNOR",
                                                 help="Address of the federation's FederationGovernor.")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="FEDLEDGER_KEY", help="Raw private key (hex).",
                                            show_default=False)]
StateDirOpt = Annotated[Path | None, typer.Option("--state-dir", help="Peer state directory (its keystore signs).")]
PasswordOpt = Annotated[Path | None, typer.Option("--password-file", help="Keystore password file.")]
DEFAULTS = {"rpc": DEFAULT_RPC}


def governor(rpc: str, address: str | None, key: str | None = None, state_dir: Path | None = None,
             password_file: Path | None = None, *, sign: bool = True):
    """A governor binding, signing as --key or the peer keystore in --state-dir when `sign`."""
    from eth_account import Account

    from ledger_tools.chain.governance import FederationGovernor

    check_url(rpc, "--rpc")
    if not address:
        raise UserError("no governor address given", hint="pass --governor 0x… (or set FEDLEDGER_GOVERNOR)",
                        exit_code=2)
    account = None
    if sign:
        if key:
            try:
                account = Account.from_key(key)
            except (ValueError, TypeError) as exc:
                raise UserError("FEDLEDGER_KEY / --key is not a valid private key", exit_code=2,
                                hint="a private key is 0x + 64 hex digits; or pass --state-dir DIR") from exc
        elif state_dir is not None:
            account = unlock_identity(state_dir, password_file).account
        else:
            raise UserError("no account given", hint="pass --state-dir DIR (your peer identity) or --key",
                            exit_code=2)
    try:
        return FederationGovernor(rpc, address, account)
    except ValueError as exc:
        raise UserError(f"--governor {address!r} is not a contract address: {exc}", exit_code=2,
                        hint="pass the FederationGovernor address `fedledger devnet deploy` printed") from exc


#: The node refused a transaction because another process (e.g. this member's running peer) took its nonce.
_NONCE_RACE = ("nonce too low", "replacement transaction underpriced")


def chain_call(what: str, call: Callable[[], T]) -> T:
    """Run one chain call; a revert or an unreachable node becomes one line naming `what` failed and why.
    A transaction that lost its nonce to the member's own running peer is sent again (with a fresh nonce)."""
    from ledger_tools.chain import ContractRevert, LedgerError, LedgerUnavailable

    attempts = 3
    for attempt in range(attempts):
        try:
            with service_errors(option="--governor", expected="FederationGovernor"):  # wrong server or contract
                return call()
        except ContractRevert as exc:
            raise UserError(f"{what} refused by the contract: {exc}") from exc
        except LedgerUnavailable as exc:
            raise UserError(str(exc), hint="is the node running? pass --rpc URL (or set FEDLEDGER_RPC)",
                            exit_code=EXIT_UNREACHABLE) from exc
        except LedgerError as exc:
            if attempt + 1 < attempts and any(m in str(exc) for m in _NONCE_RACE):
                time.sleep(0.5)
                continue
            raise UserError(f"{what} failed: {exc}", hint="check --governor (its FederationGovernor) and the "
                                                          "proposal (`fedledger gov list`)") from exc
    raise AssertionError("unreachable")
