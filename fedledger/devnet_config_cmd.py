"""`fedledger devnet config`: write a federation config from the members' `peer init --json` files, so the
convener never edits JSON by hand; and the deploy-time funding check shared with `devnet deploy`."""
from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Annotated, Any

import typer

from fedledger.devnet_cmd import app
from fedledger.errors import UserError, bad_input

#: rounds a federation is expected to run when the operator does not say (`--expect-rounds`)
DEFAULT_EXPECTED_ROUNDS = 100
WEI_PER_ETH = 10**18


def funding_warning(reward_per_round_wei: int, funding_wei: int, expected_rounds: int) -> str | None:
    """One line when the reward pool cannot pay `expected_rounds` rounds (None when it can, or pays nothing).

    The contract pays nothing (silently) once the pool is empty, so the convener hears it before deploying."""
    if reward_per_round_wei <= 0 or expected_rounds <= 0:
        return None
    funded = funding_wei // reward_per_round_wei
    if funded >= expected_rounds:
        return None
    return (f"funding_wei pays {funded} round(s) of reward_per_round_wei, fewer than the {expected_rounds} "
            f"expected: rounds {funded + 1} and later pay 0 (raise funding_wei to "
            f"{reward_per_round_wei * expected_rounds}, or say --expect-rounds N)")


def _party(spec: str, what: str) -> dict[str, str]:
    """`ADDRESS:ENC_KEY`, or a file with `fedledger peer init --json` output (address + enc_key)."""
    path = Path(spec)
    if path.is_file():
        try:
            info = json.loads(path.read_text().strip().splitlines()[-1])
            return {"address": info["address"], "enc_key": info["enc_key"]}
        except (OSError, ValueError, KeyError, IndexError, TypeError) as exc:
            raise bad_input(f"{what} file {spec}: not the output of `fedledger peer init --json` ({exc})",
                            hint="the file holds one JSON object with address and enc_key") from exc
    address, sep, enc_key = spec.partition(":")
    if not sep:
        raise bad_input(f"{what} {spec!r}: neither a file nor ADDRESS:ENC_KEY",
                        hint="pass the `peer init --json` file of the institution, or 0xADDRESS:0xENC_KEY")
    return {"address": address, "enc_key": enc_key}


def _wei(eth: str, option: str) -> int:
    try:
        value = Decimal(eth) * WEI_PER_ETH
    except InvalidOperation as exc:
        raise bad_input(f"{option} {eth!r} is not a number of ETH", hint=f"e.g. {option} 1.5") from exc
    if value < 0 or value != value.to_integral_value():
        raise bad_input(f"{option} {eth!r} must be a non-negative amount of ETH (at most 18 decimals)",
                        hint=f"e.g. {option} 1.5")
    return int(value)


@app.command("config")
def config(
    member: Annotated[list[str], typer.Option(
        "--member", "-m", help="A member: its `peer init --json` file, or ADDRESS:ENC_KEY (repeatable).")],
    genesis: Annotated[Path, typer.Option(
        "--genesis", help="The output of `fedledger devnet genesis` (model_spec_hash, genesis hash + CID).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Config file to write (.json or .toml).")] = Path(
        "federation.json"),
    auditor: Annotated[list[str] | None, typer.Option(
        "--auditor", "-a", help="An auditor: `peer init --json` file or ADDRESS:ENC_KEY (repeatable).")] = None,
    rule: Annotated[str, typer.Option(help="fedavg krum multi_krum trimmed_mean median bulyan nnm+<rule>.")] = "median",
    f: Annotated[int, typer.Option("--f", help="Byzantine members tolerated (checked against the rule).")] = 1,
    quorum_bps: Annotated[int, typer.Option(help="Share of voting weight that finalizes (5000 = majority).")] = 5000,
    commit_period: Annotated[int, typer.Option(help="Seconds to commit an update.")] = 120,
    vote_period: Annotated[int, typer.Option(help="Seconds to vote.")] = 120,
    reward_eth: Annotated[str, typer.Option(help="Reward pool paid out per finalized round (ETH).")] = "1",
    funding_eth: Annotated[str, typer.Option(help="ETH the deployer puts in the reward pool.")] = "100",
    expect_rounds: Annotated[int, typer.Option(
        help="Rounds the federation should run; warns when the funding pays fewer.")] = DEFAULT_EXPECTED_ROUNDS,
    force: Annotated[bool, typer.Option("--force", help="Overwrite --out.")] = False,
) -> None:
    """Write (and validate) a federation config: members, auditors, rule, periods, rewards, genesis model."""
    from ledger_tools.config import ConfigError, FederationConfig

    try:
        pinned = json.loads(genesis.read_text())
        genesis_fields = {k: pinned[k] for k in ("model_spec_hash", "genesis_model_hash", "genesis_model_cid")}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise bad_input(f"--genesis {genesis}: not the output of `fedledger devnet genesis` ({exc})",
                        hint="fedledger devnet genesis --task digits > genesis.json") from exc
    data: dict[str, Any] = {
        "members": [_party(spec, "--member") for spec in member],
        "auditors": [_party(spec, "--auditor") for spec in auditor or []],
        "rule": rule, "f": f, "quorum_bps": quorum_bps, "commit_period": commit_period,
        "vote_period": vote_period, "reward_per_round_wei": _wei(reward_eth, "--reward-eth"),
        "funding_wei": _wei(funding_eth, "--funding-eth"), "scale_bits": pinned.get("scale_bits", 20),
        **genesis_fields,
    }
    try:
        federation = FederationConfig.from_data(data, source="federation config")
    except ConfigError as exc:
        raise bad_input(str(exc), hint="fix the option named above; nothing was written") from exc
    if out.exists() and not force:
        raise UserError(f"{out} exists", hint="pass --force to overwrite it, or another --out")
    if out.suffix.lower() == ".toml":
        import tomli_w

        out.write_text(tomli_w.dumps(federation.model_dump(mode="json")))
    else:
        federation.dump(out)
    warning = funding_warning(federation.reward_per_round_wei, federation.funding_wei, expect_rounds)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"{out}: {len(federation.members)} members, {len(federation.auditors)} auditor(s), rule "
               f"{federation.rule} f={federation.f}; deploy it with `fedledger devnet deploy --config {out}`")
