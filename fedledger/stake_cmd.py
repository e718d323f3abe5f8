"""`fedledger peer stake|withdraw`: a member's (or candidate's) ETH stake in the federation's governor."""
from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console

from fedledger.errors import UserError
from fedledger.gov_signer import DEFAULTS, GovernorOpt, KeyOpt, PasswordOpt, RpcOpt, StateDirOpt, chain_call, governor
from fedledger.peer_cmd import app

console = Console()
ETH = 10**18


@app.command()
def stake(
    amount_eth: Annotated[float, typer.Option("--amount-eth", help="ETH to add to your stake.")],
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Deposit stake: a candidate before its admission vote executes, or a member topping up."""
    if amount_eth <= 0:
        raise UserError(f"--amount-eth must be positive, got {amount_eth:g}", hint="e.g. --amount-eth 1", exit_code=2)
    gov = governor(rpc, governor_address, key, state_dir, password_file)
    r = chain_call("staking", lambda: gov.stake(round(amount_eth * ETH)))
    total = gov.stake_of(gov.account.address).amount
    console.print(f"staked {amount_eth:g} ETH, {total / ETH:g} ETH in total (tx {r.tx_hash}, gas {r.gas_used})")


@app.command()
def withdraw(
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Leave the federation and take your stake back: the first call leaves (you stop counting at once) and
    starts the withdrawal delay; call again after it to be paid. Earned rewards stay claimable."""
    gov = governor(rpc, governor_address, key, state_dir, password_file)
    info = chain_call("reading your stake", lambda: gov.stake_of(gov.account.address))
    if info.unlock_at == 0:
        r = chain_call("leaving", gov.leave)
        info = gov.stake_of(gov.account.address)
        when = datetime.fromtimestamp(info.unlock_at, UTC).isoformat()
        console.print(f"left the federation (tx {r.tx_hash}); {info.amount / ETH:g} ETH withdrawable from {when} "
                      f"with `fedledger peer withdraw` again")
        return
    r = chain_call("the withdrawal", gov.withdraw)
    console.print(f"withdrew {info.amount / ETH:g} ETH (tx {r.tx_hash}, gas {r.gas_used})")
