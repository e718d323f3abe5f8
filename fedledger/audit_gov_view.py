"""The governance part of `fedledger audit`: membership changes (by proposal, exit, slashing), stakes and slashes
over time, read from the ledger's and its governor's event logs (`ledger_tools.audit.governance`).

`audit rounds` and `audit report` show it after the rounds; `audit governance` prints it alone (or as JSON).
"""
from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedledger.errors import UserError

ETH = 10**18
_STYLE = {"admitted": "green", "removed": "red", "slashed": "bold red", "staked": "cyan", "leaving": "yellow",
          "withdrawn": "yellow", "executed": "blue", "proposed": "blue"}


def load_gov(ledger, history, cache_dir):
    """The governance log, or one UserError line when the node or the governor cannot be read."""
    from ledger_tools.audit.governance import load_governance
    from ledger_tools.chain import LedgerError
    from ledger_tools.ledger_cache import LedgerCacheError

    try:
        return load_governance(ledger, history, cache_dir=cache_dir)
    except (LedgerError, LedgerCacheError) as exc:
        raise UserError(f"reading the federation's governance failed: {exc}",
                        hint="retry; if it persists, delete the cache (--cache-dir)") from exc


def print_governance(console: Console, gov, history, *, proposals: bool = False) -> None:
    """The governance timeline as a table (members at deployment in one line), then who is slashable for what."""
    bootstrap = [e for e in gov.timeline if e.kind == "admitted" and e.detail.startswith("at deployment")]
    owner = (f"owned by its governor {gov.governor}: members admit and remove by vote, anyone slashes with a proof"
             if gov.governor else "owned by an account (deployed without a governor)")
    console.print(f"[bold]governance[/]: {len(bootstrap)} member(s) at deployment; the ledger is {owner}",
                  soft_wrap=True)
    rows = [e for e in gov.timeline if e not in bootstrap and (proposals or e.kind != "proposed")]
    if not rows:
        console.print("no membership change, stake or slash since deployment")
        return
    table = Table(title="membership changes, stakes and slashes")
    for col in ("block", "round", "event", "account", "detail"):
        table.add_column(col, overflow="fold")
    for e in rows:
        style = _STYLE.get(e.kind, "")
        table.add_row(str(e.block), str(e.round), f"[{style}]{e.kind}[/]" if style else e.kind, e.account, e.detail)
    console.print(table)
    current = [m for m in history.members if m not in history.removed]
    console.print(f"members now: {len(current)}; removed: {len(history.removed)}; slashes: {len(gov.slashes)}"
                  + (f"; stake held: {sum(gov.stakes.values()) / ETH:g} ETH" if gov.stakes else ""))


def governance(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Membership changes (admitted / removed, by proposal, exit or slashing), proposals, stakes and slashes."""
    ledger, history = ctx.obj.load()
    gov = load_gov(ledger, history, ctx.obj.cache_dir)
    if as_json:
        typer.echo(json.dumps(gov.to_json()))
        return
    print_governance(Console(), gov, history, proposals=True)
