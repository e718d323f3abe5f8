"""`fedledger devnet deploy`: compile and deploy a federation from its config — the ledger and the governor that
owns it (`devnet.deploy.deploy_governed_federation`): after deployment the deployer has no special power."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedledger.errors import EXIT_UNREACHABLE, UserError, bad_input
from fedledger.service_errors import check_url

console = Console()
StateDir = Annotated[Path, typer.Option("--state-dir", help="Where pids, the chain state and the IPFS repo live.")]
_DEFAULT_STATE_DIR = Path(".fedledger/devnet")


def deploy(
    config: Annotated[Path, typer.Option("--config", "-c", help="Federation config file (JSON or TOML).")],
    rpc: Annotated[str | None, typer.Option(help="Chain JSON-RPC URL (default: the running devnet's).")] = None,
    key: Annotated[
        str | None,
        typer.Option(envvar="FEDLEDGER_DEPLOYER_KEY", help="Deployer private key (hex); default: anvil dev account 0."),
    ] = None,
    state_dir: StateDir = _DEFAULT_STATE_DIR,
    expect_rounds: Annotated[int, typer.Option(
        help="Rounds the federation should run: warns (before deploying) if funding_wei pays fewer.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print address, governor, deploy block, rpc, chain id "
                                                         "(JSON).")] = False,
    voting_period: Annotated[int, typer.Option(help="Governance: seconds a proposal is open for votes.")] = 3600,
    execution_delay: Annotated[int, typer.Option(help="Governance: seconds between a proposal passing and its "
                                                      "execution.")] = 600,
    min_stake_eth: Annotated[float, typer.Option(help="Governance: stake (ETH) a new member deposits.")] = 1.0,
    withdraw_delay: Annotated[int, typer.Option(help="Governance: seconds a leaving member waits for its "
                                                     "stake.")] = 7 * 86400,
) -> None:
    """Compile and deploy a FederationLedger from a config file, owned by its FederationGovernor; print both
    addresses and the parameters. The deployer keeps no power: members admit and remove by vote
    (`fedledger gov`), bounded by the governance options (docs/governance.md).

    The config is checked before any network call: a rule/f that can never aggregate with these members is
    refused; a reward pool that pays fewer than --expect-rounds rounds is a one-line warning."""
    from fedledger.devnet_config_cmd import funding_warning
    from ledger_tools.config import ConfigError, FederationConfig

    try:
        federation = FederationConfig.load(config)
    except ConfigError as exc:
        raise bad_input(f"bad federation config: {exc}", hint="see docs/devnet.md for the config keys") from exc
    warning = funding_warning(federation.reward_per_round_wei, federation.funding_wei, expect_rounds)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    from fedledger.devnet_cmd import _default_rpc

    if min(voting_period, execution_delay, withdraw_delay, min_stake_eth) < 0:
        raise bad_input("governance periods and --min-stake-eth cannot be negative",
                        hint="e.g. --voting-period 3600 --execution-delay 600 --min-stake-eth 1")
    if key is not None:
        from eth_account import Account

        try:
            Account.from_key(key)
        except (ValueError, TypeError) as exc:
            raise bad_input("FEDLEDGER_DEPLOYER_KEY / --key is not a valid private key",
                            hint="--key takes a 32-byte hex private key (0x + 64 hex digits)") from exc
    rpc_url = check_url(rpc, "--rpc") if rpc else _default_rpc(state_dir)
    from devnet.anvil import dev_accounts, rpc_answers

    chain_id = rpc_answers(rpc_url, timeout=3.0)
    if chain_id is None:
        raise UserError(f"cannot reach a JSON-RPC node at {rpc_url}", exit_code=EXIT_UNREACHABLE,
                        hint="start one with `fedledger devnet up --detach`, or pass --rpc URL")
    if key is None:
        if chain_id != 31337:
            raise bad_input(f"chain {chain_id} at {rpc_url} is not a devnet: no default deployer key",
                            hint="pass --key HEX or set FEDLEDGER_DEPLOYER_KEY")
        key = dev_accounts()[0].private_key
    from decimal import Decimal

    from devnet.deploy import deploy_governed_federation
    from devnet.toolchain import ToolMissing
    from ledger_tools.chain import LedgerError
    from ledger_tools.chain.governance import GovParams

    gov = GovParams(voting_period=voting_period, execution_delay=execution_delay, withdraw_delay=withdraw_delay,
                    min_stake=int(Decimal(str(min_stake_eth)) * 10**18))
    try:
        deployed = deploy_governed_federation(rpc_url, federation, key, gov)
    except ToolMissing as exc:
        raise UserError(str(exc), hint="run `bash scripts/setup.sh`") from exc
    except LedgerError as exc:
        raise UserError(f"deployment to {rpc_url} failed: {exc}",
                        hint="check the deployer's balance (funding_wei) and the config's parameters") from exc
    except (ValueError, TypeError) as exc:  # e.g. a malformed --key
        raise UserError(f"deployment to {rpc_url} failed: {exc}", hint="--key takes a 32-byte hex private key") from exc
    address = deployed.address
    if as_json:
        typer.echo(json.dumps({"contract": str(address), "governor": deployed.governor.address,
                               "deploy_block": deployed.deploy_block, "rpc": rpc_url, "chain_id": chain_id}))
        return
    table = Table(title="federation deployed", show_header=False)
    table.add_column("key")
    table.add_column("value")
    table.add_row("address", str(address))
    table.add_row("governor", f"{deployed.governor.address} (owns the ledger; `fedledger gov --governor …`)")
    table.add_row("rpc", rpc_url)
    table.add_row("chain id", str(chain_id))
    receipt = getattr(deployed.ledger, "deploy_receipt", None)
    table.add_row("deploy block", str(deployed.deploy_block))
    if receipt is not None:
        table.add_row("deploy tx", f"{getattr(receipt, 'tx_hash', '?')} (gas {getattr(receipt, 'gas_used', '?')})")
    for name, value in federation.model_dump(exclude={"members", "auditors"}).items():
        table.add_row(name, str(value))
    table.add_row("members", str(len(federation.members)))
    for member in federation.members:
        table.add_row("  member", f"{member.address} weight {member.weight}")
    auditors = getattr(federation, "auditors", None) or []
    table.add_row("auditors", str(len(auditors)))
    for name, value in vars(gov).items():
        table.add_row(f"gov {name}", str(value))
    console.print(table)
