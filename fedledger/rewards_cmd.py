"""`fedledger rewards show|claim`: a contributor's earnings, and one claim transaction for all of them.

Proofs come from each round's reward tree published on IPFS, checked against the root the chain finalized.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from fedledger.endpoints import EndpointGroup, Endpoints, endpoint_options, parse_round_range, unlock_identity
from fedledger.errors import UserError

app = typer.Typer(help="See and claim your rewards (Merkle proofs from the published reward trees). Endpoint "
                       "options (--rpc, --contract, --ipfs, --cache-dir) go before or after the subcommand.",
                  no_args_is_help=True, callback=endpoint_options, cls=EndpointGroup)
console = Console()
ETH = 10**18


def _account(state_dir: Path | None, key_env: str | None, password_file: Path | None, *, need_key: bool):
    """(address, LocalAccount | None) from the contributor's keystore (state dir) or a raw key."""
    from eth_account import Account

    if key_env:
        try:
            acct = Account.from_key(key_env)
        except (ValueError, TypeError) as exc:
            raise UserError("FEDLEDGER_KEY / --key is not a valid private key",
                            hint="a private key is 0x + 64 hex digits; or pass --state-dir DIR (your keystore)",
                            exit_code=2) from exc
        return acct.address, acct
    if state_dir is None:
        raise UserError("no account given", hint="pass --state-dir DIR (your peer identity) or --key", exit_code=2)
    if not need_key:
        public = state_dir / "identity.json"
        try:
            return json.loads(public.read_text())["address"], None
        except (OSError, ValueError, KeyError):
            pass  # fall through: unlock the keystore instead
    identity = unlock_identity(state_dir, password_file)
    return identity.address, identity.account


def _view(ctx: Endpoints, address: str, rounds: str | None):
    from ledger_tools.audit.rewards import rewards_of

    rng = parse_round_range(rounds)  # a malformed range is refused before anything is contacted
    ledger, history = ctx.load()
    wanted = None
    if rng is not None:
        wanted = history.round_numbers(rng)
        bad = [r for r in wanted if history.rounds[r].status.value == "failed"]
        if bad and len(bad) == len(wanted):
            raise UserError(f"round(s) {', '.join(map(str, bad))} failed: a failed round pays no rewards",
                            hint="see `fedledger audit rounds`")
    view = rewards_of(history, ctx.store(), address, rounds=wanted)
    return ledger, history, view


StateDirOpt = Annotated[Path | None, typer.Option("--state-dir", help="Your peer identity directory.")]
KeyOpt = Annotated[str | None, typer.Option("--key", envvar="FEDLEDGER_KEY", help="Raw private key (hex).",
                                               show_default=False)]
PasswordOpt = Annotated[Path | None, typer.Option("--password-file", help="Keystore password file.")]
RoundsOpt = Annotated[str | None, typer.Option("--rounds", help="Only these rounds: N, A..B, A.., ..B.")]


@app.command()
def show(
    ctx: typer.Context,
    state_dir: StateDirOpt = None,
    key: KeyOpt = None,
    address: Annotated[str | None, typer.Option("--address", help="Any account (read-only).")] = None,
    password_file: PasswordOpt = None,
    rounds: RoundsOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Claimable reward per finalized round, what was already claimed, and totals."""
    if address is None:
        address, _ = _account(state_dir, key, password_file, need_key=False)
    _, history, view = _view(ctx.obj, address, rounds)
    if as_json:
        typer.echo(json.dumps({
            "account": address, "earned_wei": str(view.total_earned), "claimed_wei": str(view.total_claimed),
            "claimable_wei": str(view.total_claimable),
            "rounds": [{"round": e.round, "amount_wei": str(e.amount), "claimed": e.claimed} for e in view.entries],
            "problems": [{"round": p.round, "reason": p.reason} for p in view.problems]}))
        return
    t = Table(title=f"rewards of {address}")
    for col in ("round", "amount ETH", "status"):
        t.add_column(col)
    for e in view.entries:
        t.add_row(str(e.round), f"{e.amount / ETH:.6f}", "claimed" if e.claimed else "[green]claimable[/]")
    console.print(t)
    for p in view.problems:
        console.print(f"[yellow]{escape(p.reason)}[/]", soft_wrap=True)  # the reason names its round
    console.print(f"earned {view.total_earned / ETH:.6f} ETH, claimed {view.total_claimed / ETH:.6f} ETH, "
                  f"claimable [bold]{view.total_claimable / ETH:.6f} ETH[/] in {len(view.claimable)} round(s)")


@app.command()
def claim(
    ctx: typer.Context,
    state_dir: StateDirOpt = None,
    key: KeyOpt = None,
    password_file: PasswordOpt = None,
    rounds: RoundsOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run",
                                          help="Build and estimate the transaction; don't send it.")] = False,
) -> None:
    """Claim every unclaimed reward (of finalized rounds) in one transaction."""
    from ledger_tools.audit.rewards import NothingToClaim, build_claim
    from ledger_tools.chain import LedgerError

    address, account = _account(state_dir, key, password_file, need_key=True)
    ledger, history, view = _view(ctx.obj, address, rounds)
    # The cache is at most one block behind, but a claim sent from elsewhere may be pending: ask the contract.
    entries = [e for e in view.entries if not (e.claimable and ledger.is_claimed(address, e.round))]
    try:
        call = build_claim(entries)
    except NothingToClaim as exc:
        if view.problems:  # the rewards can't be known: that is a problem, not "nothing to claim"
            raise UserError(f"nothing claimable found for {address}, but {len(view.problems)} round(s) have "
                            f"unreadable reward trees", hint=view.problems[0].reason) from exc
        # Nothing left is the normal state after a claim: say so and succeed, so a repeated claim is no error.
        why = ("earned nothing yet: rewards go to members whose updates were kept" if not view.entries
               else f"everything earned ({view.total_earned / ETH:.6f} ETH) is already claimed")
        console.print(f"nothing to claim for {address}: {why}")
        return
    rounds_list, amounts, proofs = call.args()
    signer = ledger.with_account(account)
    if dry_run:
        try:
            gas = signer.estimate_claim(rounds_list, amounts, proofs)
        except LedgerError as exc:
            raise UserError(f"the claim would be rejected: {exc}") from exc
        price = signer.w3.eth.gas_price
        console.print(f"would claim {call.total / ETH:.6f} ETH for rounds {rounds_list} in one transaction; "
                      f"gas {gas} (~{gas * price / ETH:.6f} ETH at {price / 1e9:.2f} gwei)")
        return
    try:
        receipt = signer.claim(rounds_list, amounts, proofs)
    except LedgerError as exc:
        raise UserError(f"claim rejected: {exc}", hint="run `fedledger rewards show` to see what is claimable") from exc
    console.print(f"claimed [bold]{call.total / ETH:.6f} ETH[/] for rounds {rounds_list}: tx {receipt.tx_hash} "
                  f"(block {receipt.block_number}, gas {receipt.gas_used})")
