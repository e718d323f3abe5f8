"""`fedledger gov …`: member governance of a federation (propose, vote, execute, list, show) and slashing an
equivocating member from its signed gossip envelopes (`slash`). Every revert is one line naming its reason."""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fedledger.errors import UserError
from fedledger.gov_signer import DEFAULTS, GovernorOpt, KeyOpt, PasswordOpt, RpcOpt, StateDirOpt, chain_call, governor

app = typer.Typer(help="Govern the federation by member vote; slash provable misbehaviour.", no_args_is_help=True)
propose_app = typer.Typer(help="Open a proposal (members only); members then vote on it.", no_args_is_help=True)
app.add_typer(propose_app, name="propose")
console = Console()
ETH = 10**18
WEIGHT_ONE = 1_000_000
MAX_WEIGHT = (2**64 - 1) / WEIGHT_ONE  # the governor stores a weight as uint64 in units of 1e-6

AccountOpt = Annotated[str, typer.Option("--account", help="The member or auditor address the proposal is about.")]
EncKeyOpt = Annotated[str, typer.Option("--enc-key", help="X25519 public key (0x + 64 hex), from `peer init`.")]


def _gov(rpc: str, address: str | None, key: str | None, state_dir: Path | None, password_file: Path | None):
    """The signing governor binding, checked to be a FederationGovernor with one read first: a wrong --governor
    is bad input (exit 2), not a transaction the contract refused (exit 1)."""
    gov = governor(rpc, address, key, state_dir, password_file)
    chain_call("reading the governor", gov.ledger_address)
    return gov


def _commit_tx(gov: Any, member: str, round_: int) -> Any:
    """`member`'s signed commit transaction of `round_`, read from the governor's ledger (its Committed event)."""
    from ledger_tools.chain import FederationLedger
    from ledger_tools.chain.signed_tx import SignedTxError, commit_tx

    ledger = FederationLedger(gov.rpc_url, gov.ledger_address(), deploy_block=gov.deploy_block, w3=gov.w3)
    try:
        return commit_tx(ledger, member, round_)
    except LookupError as exc:
        raise UserError(f"{exc}: there is no commitment to contradict",
                        hint="a commitment-mismatch slash needs the member's commit of the envelope's round",
                        exit_code=1) from exc
    except SignedTxError as exc:
        raise UserError(f"the node returned an unreadable commit transaction: {exc}",
                        hint="try another --rpc node", exit_code=1) from exc


def _enc_key(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UserError(f"--enc-key must be 32 bytes of hex, got {text!r}",
                        hint="the enc_key `fedledger peer init` printed: 0x + 64 hex digits", exit_code=2)
    return raw


def _account(text: str) -> str:
    from eth_utils import is_address, to_checksum_address

    if not is_address(text):
        raise UserError(f"--account {text!r} is not an Ethereum address",
                        hint="0x + 40 hex digits, the address `fedledger peer init` printed", exit_code=2)
    return to_checksum_address(text)


def _weight(weight: float) -> int:
    if not 0 < weight <= MAX_WEIGHT:
        raise UserError(f"--weight {weight:g} is out of range", hint="a voting weight above 0, e.g. --weight 1.0 "
                        f"(a full member); at most {MAX_WEIGHT:g}", exit_code=2)
    return round(weight * WEIGHT_ONE)


def _wei(eth: float) -> int:
    if not 0 <= eth < 2**256 / ETH:  # NaN and amounts no uint256 holds are refused here, not by the ABI encoder
        raise UserError(f"an amount must be a non-negative number of ETH, got {eth:g}",
                        hint="e.g. --stake-eth 1.5", exit_code=2)
    return min(round(eth * ETH), 2**256 - 1)


def _proposed(receipt) -> None:
    console.print(f"proposal [bold]{receipt.proposal_id}[/] opened (tx {receipt.tx_hash}, gas {receipt.gas_used}); "
                  f"members vote with `fedledger gov vote {receipt.proposal_id}`")


@propose_app.command("admit")
def propose_admit(
    account: AccountOpt, enc_key: EncKeyOpt,
    weight: Annotated[float, typer.Option("--weight", help="Initial voting weight (1.0 = a full member).")] = 1.0,
    stake_eth: Annotated[float, typer.Option("--stake-eth", help="Stake (ETH) the candidate must have deposited "
                                                                 "when the proposal executes.")] = 1.0,
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Propose admitting a member (address, X25519 key, initial weight, stake)."""
    args = (_account(account), _enc_key(enc_key), _weight(weight), _wei(stake_eth))  # checked before connecting
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    _proposed(chain_call("the proposal", lambda: gov.propose_admit(*args)))


@propose_app.command("remove")
def propose_remove(
    account: AccountOpt, rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Propose removing a member (refused if the rest could not aggregate under the rule)."""
    account = _account(account)
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    _proposed(chain_call("the proposal", lambda: gov.propose_remove(account)))


@propose_app.command("add-auditor")
def propose_add_auditor(
    account: AccountOpt, enc_key: EncKeyOpt, rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None,
    key: KeyOpt = None, state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Propose registering an auditor (it can unseal every update blob from then on)."""
    account, raw_key = _account(account), _enc_key(enc_key)
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    _proposed(chain_call("the proposal", lambda: gov.propose_register_auditor(account, raw_key)))


@propose_app.command("remove-auditor")
def propose_remove_auditor(
    account: AccountOpt, rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Propose removing an auditor."""
    account = _account(account)
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    _proposed(chain_call("the proposal", lambda: gov.propose_remove_auditor(account)))


@propose_app.command("param")
def propose_param(
    name: Annotated[str, typer.Option("--name", help="min_stake, pass_bps, quorum_bps, voting_period, "
                                                     "execution_delay, execution_window, withdraw_delay, "
                                                     "reporter_share_bps or slash_bps.")],
    value: Annotated[int, typer.Option("--value", help="New value (wei, basis points or seconds).")],
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Propose changing a governance parameter (bounds in docs/governance.md)."""
    from ledger_tools.chain.governance import GovParam

    try:
        param = GovParam[name.upper()]
    except KeyError:
        names = ", ".join(p.name.lower() for p in GovParam)
        raise UserError(f"unknown parameter {name!r}", hint=f"one of {names}", exit_code=2) from None
    if not 0 <= value < 2**256:
        raise UserError(f"--value {value} is out of range", hint="a non-negative integer (wei, basis points or "
                        "seconds; bounds in docs/governance.md)", exit_code=2)
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    _proposed(chain_call("the proposal", lambda: gov.propose_parameter(param, value)))


@propose_app.command("params")
def propose_params(
    reward_per_round: Annotated[float | None, typer.Option("--reward-per-round", help="Reward per round, ETH.")] = None,
    commit_period: Annotated[int | None, typer.Option("--commit-period", help="Commit period (s).")] = None,
    vote_period: Annotated[int | None, typer.Option("--vote-period", help="Vote period (s).")] = None,
    quorum_bps: Annotated[int | None, typer.Option("--quorum-bps", help="Finalization quorum (5000..9999).")] = None,
    rule: Annotated[str | None, typer.Option("--rule", help="Aggregation rule, e.g. multi_krum.")] = None,
    f: Annotated[int | None, typer.Option("--f", help="Tolerated Byzantine members.")] = None,
    rule_param: Annotated[int | None, typer.Option("--rule-param", help="Rule parameter (0 = default).")] = None,
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Propose the ledger's round parameters (from the round after execution); unset flags keep their value."""
    import dataclasses

    from ledger_tools.chain.binding import FederationLedger

    given = {"reward_per_round_wei": None if reward_per_round is None else _wei(reward_per_round),
             "commit_period": commit_period, "vote_period": vote_period, "quorum_bps": quorum_bps, "rule": rule,
             "f": f, "rule_param": rule_param}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        raise UserError("nothing to change", hint="pass at least one of --reward-per-round, --commit-period, "
                        "--vote-period, --quorum-bps, --rule, --f, --rule-param", exit_code=2)
    if any(isinstance(v, int) and v < 0 for v in given.values()):
        raise UserError("a round parameter cannot be negative", exit_code=2)
    gov = _gov(rpc, governor_address, key, state_dir, password_file)

    def propose():
        ledger = FederationLedger(gov.rpc_url, gov.ledger_address(), deploy_block=gov.deploy_block, w3=gov.w3)
        current = ledger.params_for_round(ledger.current_round() + 1).round_params()
        return gov.propose_round_params(dataclasses.replace(current, **given))

    _proposed(chain_call("the proposal", propose))


@app.command()
def vote(
    proposal_id: Annotated[int, typer.Argument(help="Proposal number.")],
    support: Annotated[bool, typer.Option("--for/--against", help="Vote for (default) or against.")] = True,
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Vote on a proposal with your reputation weight (members only, once)."""
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    r = chain_call("the vote", lambda: gov.vote(proposal_id, support))
    console.print(f"voted {'for' if support else 'against'} proposal {proposal_id} (tx {r.tx_hash}, gas {r.gas_used})")


@app.command()
def execute(
    proposal_id: Annotated[int, typer.Argument(help="Proposal number.")],
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Execute a passed proposal once its delay is over (anyone)."""
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    r = chain_call("the execution", lambda: gov.execute(proposal_id))
    console.print(f"proposal {proposal_id} executed (tx {r.tx_hash}, gas {r.gas_used})")


def _describe(p, gov=None) -> str:
    from ledger_tools.chain.governance import GovParam, ProposalKind

    if p.kind is ProposalKind.ROUND_PARAMS and gov is not None:
        u = gov.round_params_proposal(p.id)
        return (f"round params: rule {u.rule} (param {u.rule_param}) f={u.f} quorum {u.quorum_bps} bps, commit "
                f"{u.commit_period} s, vote {u.vote_period} s, reward {u.reward_per_round_wei / ETH:g} ETH")
    if p.kind is ProposalKind.ADMIT:
        return f"admit {p.account} weight {p.weight / WEIGHT_ONE:g} stake {p.value / ETH:g} ETH"
    if p.kind is ProposalKind.PARAMETER:
        return f"set {GovParam(p.param).name.lower()} = {p.value}"
    return f"{p.kind.name.lower().replace('_', ' ')} {p.account}"


def _row(p, gov=None) -> dict:
    return {"id": p.id, "kind": p.kind.name.lower(), "what": _describe(p, gov), "state": p.state.name.lower(),
            "for": p.for_weight, "against": p.against_weight, "total_weight": p.total_weight,
            "vote_end": datetime.fromtimestamp(p.vote_end, UTC).isoformat(), "proposer": p.proposer}


@app.command("list")
def list_(
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """Every proposal with its state and tally."""
    gov = governor(rpc, governor_address, sign=False)
    rows = chain_call("reading the proposals", lambda: [_row(p, gov) for p in gov.proposals()])
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    if not rows:
        console.print("no proposals yet")
        return
    table = Table("id", "what", "state", "for / against / total", "vote ends (UTC)")
    for r in rows:
        table.add_row(str(r["id"]), r["what"], r["state"], f"{r['for']} / {r['against']} / {r['total_weight']}",
                      r["vote_end"])
    console.print(table)


@app.command()
def show(
    proposal_id: Annotated[int, typer.Argument(help="Proposal number.")],
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """One proposal in full."""
    gov = governor(rpc, governor_address, sign=False)
    row = chain_call(f"reading proposal {proposal_id}", lambda: _row(gov.proposal(proposal_id), gov))
    if as_json:
        typer.echo(json.dumps(row, indent=1))
        return
    for k, v in row.items():
        console.print(f"[bold]{k}[/]: {v}")


@app.command()
def slash(
    evidence: Annotated[Path | None, typer.Option("--evidence", help="Equivocation or commitment-mismatch "
                                                                     "evidence JSON (docs/governance.md).")] = None,
    envelope: Annotated[list[Path] | None, typer.Option("--envelope", help="Instead of --evidence: two raw envelope "
                                                                           "files (equivocation), or one (its "
                                                                           "sender committed another update).")] = None,
    rpc: RpcOpt = DEFAULTS["rpc"], governor_address: GovernorOpt = None, key: KeyOpt = None,
    state_dir: StateDirOpt = None, password_file: PasswordOpt = None,
) -> None:
    """Slash a member that signed two envelopes of one round with different updates, or an envelope naming
    another update than it committed; you earn the reporter share."""
    from peer.net.envelope_proof import EnvelopeProof
    from peer.net.slash_evidence import EvidenceFileError, SlashEvidence, check_equivocation, load, load_envelope_file

    try:
        if evidence is not None and not envelope:
            ev = load(evidence)
        elif evidence is None and envelope and len(envelope) <= 2:
            ev = SlashEvidence(tuple(EnvelopeProof.of(load_envelope_file(p)) for p in envelope))
            if ev.equivocation:
                check_equivocation(*ev.proofs)
        else:
            raise UserError("pass --evidence FILE, or --envelope once or twice", exit_code=2,
                            hint="--evidence takes the JSON in docs/governance.md; --envelope a raw envelope file")
    except EvidenceFileError as exc:
        raise UserError(str(exc), hint="see docs/governance.md for the evidence format", exit_code=2) from exc
    gov = _gov(rpc, governor_address, key, state_dir, password_file)
    proofs = [p.as_abi() for p in ev.proofs]
    if ev.equivocation:
        r = chain_call("the slash", lambda: gov.slash_equivocation(proofs[0], proofs[1]))
    else:
        commit_tx = ev.commit_tx or chain_call("reading the member's commit transaction",
                                               lambda: _commit_tx(gov, ev.proofs[0].sender, ev.proofs[0].round))
        r = chain_call("the slash", lambda: gov.slash_commit_mismatch(proofs[0], commit_tx))
    removed = "; it is no longer a member" if r.removed else ""
    console.print(f"slashed {r.member} for round {r.round}: {r.amount / ETH:g} ETH taken, "
                  f"{r.reward / ETH:g} ETH paid to you{removed} (tx {r.tx_hash}, gas {r.gas_used})")
