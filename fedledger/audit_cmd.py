"""`fedledger audit …`: query and independently re-verify a federation from its ledger (+ IPFS) alone.

Read-only against any RPC URL and contract address; a key is needed only to verify (`verify`, or `report` with
a key), to unseal the committed updates (the auditor's — or any member's — X25519 key; see `audit_keys`, which
wires the peer's unsealing and identity code into the auditor: `ledger_tools` may not import `peer`).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from fedledger.audit_gov_view import governance, load_gov, print_governance
from fedledger.audit_keys import auditor_unseal, load_evidence
from fedledger.endpoints import EndpointGroup, endpoint_options, parse_round_range
from fedledger.errors import UserError

app = typer.Typer(help="Audit a federation: rounds, members, independent re-verification, reports. Endpoint "
                       "options (--rpc, --contract, --ipfs, --cache-dir) go before or after the subcommand.",
                  no_args_is_help=True, callback=endpoint_options, cls=EndpointGroup)
console = Console()
ETH = 10**18


def _short(value: bytes | str, n: int = 10) -> str:
    from ledger_tools.audit.history import short

    return short(value, n)


def _eth(wei: int) -> str:
    return f"{wei / ETH:.6f}"


@app.command()
def rounds(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every round: status, commits, votes per digest, finalized aggregate, excluded set, pool, gas; then the
    membership changes, stakes and slashes (`audit governance` for them alone)."""
    from ledger_tools.audit.export import round_json
    from ledger_tools.audit.queries import underpaid_warning

    ledger, history = ctx.obj.load()
    if as_json:
        typer.echo(json.dumps([round_json(history.rounds[r], reward_per_round_wei=history.reward_for(r))
                               for r in sorted(history.rounds)]))
        return
    table = Table(title=f"federation {history.address} (chain {history.chain_id}, rule {history.params.rule})")
    for col in ("round", "status", "commits", "votes per digest", "aggregate", "CID", "excluded", "pool ETH", "gas"):
        table.add_column(col, overflow="fold")
    for r in sorted(history.rounds):
        rec = history.rounds[r]
        f = rec.finalization
        tally = " ".join(f"{_short(d, 6)}:{c}" + ("*" if f is not None and d == f.digest else "")
                         for d, (c, _w) in rec.votes_per_digest().items())
        style = {"finalized": "green", "failed": "red"}.get(rec.status.value, "yellow")
        pool = ""
        if f is not None:
            pool = _eth(f.pool_wei) + (" [bold red]⚠ unpaid[/]" if f.pool_wei == 0 else
                                       " [bold yellow]⚠ short[/]" if history.is_underpaid(rec) else "")
        table.add_row(str(r), f"[{style}]{rec.status.value}[/]", str(len(rec.commits)), tally,
                      _short(f.aggregate_hash) if f else "", (f.aggregate_cid[:16] + "…") if f else "",
                      ", ".join(_short(a, 6) for a in f.excluded) if f else "", pool, str(rec.gas_used))
    console.print(table)
    warning = underpaid_warning(history)
    if warning:
        console.print(f"[bold yellow]warning:[/] {warning}", soft_wrap=True)
    print_governance(console, load_gov(ledger, history, ctx.obj.cache_dir), history)


app.command("governance")(governance)


@app.command("round")
def round_(
    ctx: typer.Context,
    number: Annotated[int, typer.Argument(help="Round number (from 1).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One round in detail: every commitment and vote, and the finalization."""
    from ledger_tools.audit.export import round_json

    _, history = ctx.obj.load()
    rec = history.rounds.get(number)
    if rec is None:
        last = max(history.rounds) if history.rounds else 0
        raise UserError(f"round {number} does not exist on this ledger", hint=f"rounds are 1..{last}")
    if as_json:
        typer.echo(json.dumps(round_json(rec, reward_per_round_wei=history.reward_for(number))))
        return
    from ledger_tools.audit.timeline import utc

    console.print(f"[bold]round {number}[/]: {rec.status.value}; opened {utc(rec.start)}, commit deadline "
                  f"{utc(rec.commit_deadline)}, vote deadline {utc(rec.vote_deadline)}; gas {rec.gas_used}")
    t = Table(title="commitments (canonical order)")
    for col in ("peer", "update hash", "CID", "samples", "ε", "δ", "gas"):
        t.add_column(col, overflow="fold")
    for c in sorted(rec.commits, key=lambda c: int(c.member, 16)):
        t.add_row(c.member, _short(c.update_hash, 16), c.cid, str(c.num_samples),
                  "-" if c.epsilon is None else f"{c.epsilon:.3f}", f"{c.delta:.1e}", str(c.gas_used))
    console.print(t)
    f = rec.finalization
    t = Table(title="votes")
    for col in ("voter", "digest", "aggregate", "rewards root", "excluded", "weight", "agrees", "late"):
        t.add_column(col, overflow="fold")
    for v in rec.votes:
        agrees = "" if f is None else ("[green]yes[/]" if v.digest == f.digest else "[red]no[/]")
        t.add_row(v.member, _short(v.digest), _short(v.aggregate_hash), _short(v.rewards_root),
                  ", ".join(_short(a, 6) for a in v.excluded), str(v.weight), agrees,
                  "[yellow]late[/]" if v.late else "")
    console.print(t)
    if f is not None:
        console.print(f"finalized digest {'0x' + f.digest.hex()}\n  aggregate {'0x' + f.aggregate_hash.hex()} "
                      f"at {f.aggregate_cid}\n  rewards root {'0x' + f.rewards_root.hex()} at {f.rewards_cid or '-'}"
                      f"\n  excluded {list(f.excluded)}\n  weight {f.weight_for}/{f.total_weight}, "
                      f"pool {_eth(f.pool_wei)} ETH"
                      + ("" if not history.is_underpaid(rec) else
                         f" [bold yellow]⚠ less than the {_eth(history.reward_for(number))} ETH a round "
                         "should pay (the contract ran out of funds)[/]"))
    elif rec.status.value == "failed":
        console.print(f"[red]failed[/] (closed by {rec.failed_by})")


def _rewards_by_round(history, store) -> dict[int, dict[str, int]]:
    """round -> account -> wei from the published reward trees (checked against the chain); problems printed."""
    from ledger_tools.audit.report import rewards_from_trees
    from ledger_tools.audit.rewards import reward_trees

    trees, problems = reward_trees(history, store)
    for p in problems:
        console.print(f"[yellow]warning: {p.reason}[/]")
    return rewards_from_trees(trees)


@app.command()
def peer(
    ctx: typer.Context,
    address: Annotated[str, typer.Argument(help="Member address.")],
    no_ipfs: Annotated[bool, typer.Option("--no-ipfs", help="Skip reward trees (no earnings column).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A member's history: commits, votes (agreement with the final digest), exclusions, rewards, privacy spent."""
    _, history = ctx.obj.load()
    rewards = None
    if not no_ipfs:
        by_round = _rewards_by_round(history, ctx.obj.store())
        rewards = {r: next((x for a, x in amounts.items() if a.lower() == address.lower()), 0)
                   for r, amounts in by_round.items()}
    from ledger_tools.audit.queries import peer_history

    ph = peer_history(history, address, rewards)
    if not ph.is_member and not ph.rounds:
        raise UserError(f"{address} is not a member of federation {history.address}",
                        hint="list members with `fedledger audit export --format json`")
    earned = ph.earned
    if as_json:
        typer.echo(json.dumps({
            "address": ph.address, "member": ph.is_member, "commits": ph.commits, "votes": ph.votes,
            "agreements": ph.agreements, "times_excluded": ph.times_excluded, "earned_wei": str(earned),
            "claimed_wei": str(ph.total_claimed), "epsilon_total": ph.epsilon_total,
            "rounds": [r.__dict__ for r in ph.rounds],
            "weights": [{"block": b, "weight": w} for b, w in ph.weight_updates]}))
        return
    t = Table(title=f"member {ph.address}" + ("" if ph.is_member else " (not a member)"))
    for col in ("round", "committed", "voted", "agrees", "excluded", "reward ETH", "claimed", "ε", "δ"):
        t.add_column(col)
    yn = {True: "yes", False: "no", None: "-"}
    for r in ph.rounds:
        t.add_row(str(r.round), yn[r.committed], yn[r.voted],
                  {True: "[green]yes[/]", False: "[red]no[/]", None: "-"}[r.agreed],
                  "[red]yes[/]" if r.excluded else "no", "-" if r.reward is None else _eth(r.reward), yn[r.claimed],
                  "-" if r.epsilon is None else f"{r.epsilon:.3f}", "-" if r.delta is None else f"{r.delta:.1e}")
    console.print(t)
    weight = ph.weight_updates[-1][1] if ph.weight_updates else 0
    console.print(f"commits {ph.commits}, votes {ph.votes} (agreed {ph.agreements}), excluded {ph.times_excluded}x, "
                  f"earned {_eth(earned) if rewards is not None else '?'} ETH, claimed {_eth(ph.total_claimed)} ETH, "
                  f"ε spent (sum) {'-' if ph.epsilon_total is None else f'{ph.epsilon_total:.3f}'}, "
                  f"weight {weight / 1e6:.4f}")


# ------------------------------------------------------------------------------------------ verify


@app.command()
def verify(
    ctx: typer.Context,
    rounds_: Annotated[str | None, typer.Option("--rounds", help="Round range: N, A..B, A.. or ..B.")] = None,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Hex X25519 private key of the auditor.")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir",
                                                   help="Auditor identity (fedledger peer init).")] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file")] = None,
    evidence: Annotated[Path | None, typer.Option("--evidence", help="Directory of signed gossip envelopes.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Re-derive every finalized round from chain + IPFS and compare with what the chain finalized."""
    from ledger_tools.audit.verification import Severity, verify_history

    selection = parse_round_range(rounds_)
    _, history = ctx.obj.load()
    unseal, who = auditor_unseal(history, key_file, state_dir, password_file)
    store = ctx.obj.store()
    selected = history.round_numbers(selection)
    if not any(history.rounds[r].finalization for r in selected):
        raise UserError("no finalized round to verify" + (f" in {rounds_}" if rounds_ else ""),
                        hint="failed and open rounds have no outcome; see `fedledger audit rounds`")

    def progress(res) -> None:
        if as_json:
            return
        if res.verified is None:
            console.print(f"round {res.round}: {res.status.value} (nothing to verify)")
        elif res.status.value == "failed":
            console.print(f"round {res.round}: failed, " + ("[green]no finalization, no claims[/]" if res.verified
                                                            else "[red]MISMATCH[/]"))
        else:
            console.print(f"round {res.round}: " + ("[green]verified[/]" if res.verified else "[red]MISMATCH[/]"))
        for f in res.findings:
            colour = "red" if f.severity is Severity.MISMATCH else "yellow"
            console.print(f"  [{colour}]{f.severity.value}[/] {f.line()}")

    report = verify_history(history, store=store, unseal=unseal, rounds=selection,
                            evidence=load_evidence(evidence, history, console), progress=progress)
    checked = [r for r in report.rounds if r.verified is not None and r.status.value == "finalized"]
    failed = [r for r in report.rounds if r.verified is not None and r.status.value == "failed"]
    if as_json:
        from ledger_tools.audit.timeline import now_utc

        typer.echo(json.dumps({"ok": report.ok, "auditor": who, "rounds_checked": [r.round for r in checked],
                               "failed_rounds_checked": [r.round for r in failed],
                               "findings": [f.to_json() for f in report.findings],
                               "rounds": [{"round": r.round, "status": r.status.value, "verified": r.verified}
                                          for r in report.rounds],
                               "contract": history.address, "chain_id": history.chain_id,
                               "block": history.to_block, "generated_at": now_utc()}))
    if report.mismatches:
        if not as_json:
            bad = sum(1 for r in checked + failed if not r.verified)
            console.print(f"[bold red]{len(report.mismatches)} mismatch(es) in {bad} of "
                          f"{len(checked) + len(failed)} checked round(s)[/]")
        raise typer.Exit(1)
    if not as_json:
        warn = len(report.findings)
        console.print(f"[bold green]all {len(checked)} finalized round(s) verified[/]"
                      + (f", {len(failed)} failed round(s) without finalization or claims" if failed else "")
                      + (f" ({warn} warning(s) on record)" if warn else ""))


# ------------------------------------------------------------------------------------------ export / report


@app.command()
def export(
    ctx: typer.Context,
    fmt: Annotated[str, typer.Option("--format", help="json or csv.")] = "json",
    out: Annotated[Path | None, typer.Option("--out", help="Output file (default stdout).")] = None,
    no_ipfs: Annotated[bool, typer.Option("--no-ipfs", help="Chain only: no per-member rewards.")] = False,
) -> None:
    """Export the whole history (json: everything; csv: one row per commitment, vote, finalization, failed round,
    member reward and claim, with block, time, vote weight and the late and underpaid flags)."""
    if fmt not in ("json", "csv"):
        raise UserError(f"unknown format {fmt!r}", hint="use --format json or --format csv", exit_code=2)
    from ledger_tools.audit.export import history_csv, history_json
    from ledger_tools.audit.timeline import block_times, event_blocks

    ledger, history = ctx.obj.load()
    rewards = None if no_ipfs else _rewards_by_round(history, ctx.obj.store())
    if fmt == "json":
        text = json.dumps(history_json(history, rewards=rewards), indent=1)
    else:
        text = history_csv(history, rewards=rewards, times=block_times(ledger.w3, event_blocks(history)))
    if out is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
    else:
        out.write_text(text)
        console.print(f"wrote {out}")


@app.command()
def report(
    ctx: typer.Context,
    out: Annotated[Path, typer.Option("--out", help="HTML file to write.")] = Path("report.html"),
    task: Annotated[str | None, typer.Option("--task", help="Evaluate each finalized model on this task's "
                                                               "test set (digits, breast_cancer, csv:…).")] = None,
    no_ipfs: Annotated[bool, typer.Option("--no-ipfs", help="Chain only: no reward trees, no evaluation, "
                                                            "no verification.")] = False,
    key_file: Annotated[Path | None, typer.Option("--key-file", help="Verify while reporting with this hex "
                                                                         "X25519 auditor key.")] = None,
    state_dir: Annotated[Path | None, typer.Option("--state-dir", help="Verify while reporting with this "
                                                                           "auditor identity.")] = None,
    password_file: Annotated[Path | None, typer.Option("--password-file")] = None,
    evidence: Annotated[Path | None, typer.Option("--evidence", help="Directory of signed gossip envelopes.")] = None,
    verification: Annotated[Path | None, typer.Option(
        "--verification", help="Embed the verdicts of an earlier `fedledger audit verify --json` instead.")] = None,
) -> None:
    """Write a self-contained HTML report (plots embedded): provenance, per-round verify verdicts, contributions,
    rewards, exclusions, unpaid rounds, gas, accuracy. With a key (--key-file/--state-dir) the report runs the
    verification itself; --verification FILE embeds an earlier one; without either it says it is unverified."""
    from ledger_tools.audit.provenance import Provenance
    from ledger_tools.audit.report import ReportData, render_html
    from ledger_tools.audit.timeline import block_times, event_blocks

    has_key = key_file is not None or state_dir is not None
    if verification is not None and has_key:
        raise UserError("pass either an auditor key (to verify now) or --verification FILE, not both", exit_code=2,
                        hint="drop --key-file/--state-dir, or drop --verification")
    if no_ipfs and has_key:
        raise UserError("verifying needs IPFS (the committed blobs)", hint="drop --no-ipfs", exit_code=2)
    ledger, history = ctx.obj.load()
    data = ReportData(history, provenance=Provenance.of(history, rpc_url=ctx.obj.rpc,
                                                        ipfs_url=None if no_ipfs else ctx.obj.ipfs),
                      times=block_times(ledger.w3, event_blocks(history)))
    data.governance = load_gov(ledger, history, ctx.obj.cache_dir)
    store = None if no_ipfs else ctx.obj.store()
    if store is not None:
        data.rewards = _rewards_by_round(history, store)
        if task:
            data.metrics = _evaluate(history, store, task)
    if verification is not None:
        data.verdicts = _read_verdicts(verification, history)
    elif has_key:
        data.verdicts = _verify_for_report(history, store, key_file, state_dir, password_file, evidence)
    else:
        data.not_verified = ("no auditor key was given; run `fedledger audit report` with --key-file or "
                             "--state-dir to verify while reporting, or pass --verification FILE with the output "
                             "of `fedledger audit verify --json`")
    try:
        out.write_text(render_html(data))
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from exc
    v = data.verdicts
    verdict = ("unverified" if v is None else "all checked rounds verified" if v.ok
               else f"{len(v.mismatches)} MISMATCH(es)")
    console.print(f"wrote {out} ({out.stat().st_size // 1024} KiB; {verdict})")


def _read_verdicts(path: Path, history):
    from ledger_tools.audit.verdicts import VerdictFileError, Verdicts

    try:
        text = path.read_text()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        return Verdicts.from_json(text, history, source=f"read from {path.name} (`fedledger audit verify --json`)")
    except VerdictFileError as exc:
        raise UserError(f"{path}: {exc}", hint="make it with `fedledger audit verify --json > FILE`") from None


def _verify_for_report(history, store, key_file, state_dir, password_file, evidence):
    from ledger_tools.audit.verdicts import Verdicts
    from ledger_tools.audit.verification import verify_history

    unseal, who = auditor_unseal(history, key_file, state_dir, password_file)
    report = verify_history(history, store=store, unseal=unseal, evidence=load_evidence(evidence, history, console))
    return Verdicts.from_report(report, auditor=who, source="run by `fedledger audit report` while generating "
                                                             "this report (same chain and IPFS data as above)")


def _evaluate(history, store, task_spec: str) -> dict[int, dict[str, float]]:
    from ledger_tools.audit.evaluation import ModelSpecMismatch, evaluate_models
    from peer.learning.tasks import TaskError, get_task

    try:
        task = get_task(task_spec)
    except (TaskError, ValueError) as exc:
        raise UserError(f"unknown task {task_spec!r}: {exc}") from exc
    try:
        metrics, problems = evaluate_models(history, store, task)
    except ModelSpecMismatch:
        raise UserError(f"task {task_spec!r} builds another model than this federation's (model spec hash differs)",
                        hint="pass the federation's task") from None
    for problem in problems:
        console.print(f"[yellow]warning: {problem}[/]")
    return metrics
