"""`fedledger demo`: a whole federation on this machine, watched live.

Starts a devnet (anvil) and an IPFS node, bootstraps a federation (N peers, one of them Byzantine, one
auditor), runs every peer as its own `fedledger peer run --json` process, shows a live table from their log
lines, then runs the auditor's independent verification of every round, lets every honest contributor claim
its rewards and writes the auditor's HTML report. Everything it started is stopped at the end, on error and
on Ctrl-C. Exit code 0 only when every round finalized and the audit verified all of them.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer
from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from fedledger.errors import UserError, bad_input


@dataclass
class PeerView:
    """What the demo knows about one peer process, from its JSON log lines."""

    name: str
    address: str
    byzantine: bool
    round: int | None = None
    phase: str = "starting"
    accuracy: float | None = None
    gas: int = 0
    votes: int = 0
    commits: int = 0
    finalized: set[int] = field(default_factory=set)
    last_error: str = ""
    exit_code: int | None = None


@dataclass
class RoundView:
    round: int
    finalized: bool = False
    excluded: tuple[str, ...] = ()
    accuracy: float | None = None
    agreed: int = 0


class PeerProcess:
    """One `fedledger peer run --json` child in its own process group (so its children die with it)."""

    def __init__(self, view: PeerView, args: list[str], log_path: Path, on_event) -> None:
        from devnet.processes import start_process

        self.view = view
        self.popen = start_process(args, log_path=log_path, stdout_pipe=True,
                                   env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self.log = open(log_path, "a")
        self.reader = threading.Thread(target=self._read, args=(on_event,), daemon=True)
        self.reader.start()

    def _read(self, on_event) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            line = raw.decode(errors="replace")
            self.log.write(line)
            self.log.flush()
            try:
                record = json.loads(line)
            except ValueError:
                continue
            on_event(self.view, record)

    def stop(self, timeout: float = 10.0) -> None:
        from devnet.processes import process_alive, terminate

        if process_alive(self.popen.pid, self.popen):
            terminate(self.popen.pid, self.popen, timeout, group=True)
        self.reader.join(timeout=2)
        self.log.close()


def _attack_spec(attack: str) -> str:
    """The Byzantine peer's `--attack`, with the robustness bench's strengths unless given (`name:key=value`)."""
    from simulation.attacks import STRENGTHS

    return STRENGTHS.spec(attack)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "fedledger.cli", *args]


def _byzantine_summary(attacker: str, finals: dict, store: Any, peers: int) -> str:
    """How the attacker fared on chain: rounds it was excluded from, and its share of the rewards paid."""
    from ledger_tools.audit.rewards import RewardTreeError, load_reward_tree

    excluded = sum(attacker.lower() in (a.lower() for a in f.excluded) for f in finals.values())
    paid = earned = 0
    for r, f in finals.items():
        try:
            tree = load_reward_tree(store, r, f.rewards_cid, f.rewards_root)
        except RewardTreeError:
            continue
        paid += sum(amount for _, amount in tree.values)
        earned += tree.amount_of(attacker)
    share = f"{100 * earned / paid:.1f} %" if paid else "n/a"
    return (f"Byzantine peer: excluded in {excluded} of {len(finals)} rounds; {share} of the rewards paid "
            f"(it is {100 / peers:.0f} % of the peers)")


def _short(address: str) -> str:
    return address[:8] + "…"


def _render(peers: list[PeerView], rounds: dict[int, RoundView], title: str, n_rounds: int) -> Group:
    pt = Table(title=title, expand=False)
    for col in ("peer", "role", "round", "phase", "accuracy", "commits", "votes", "gas used"):
        pt.add_column(col)
    for p in peers:
        pt.add_row(
            f"{p.name} {_short(p.address)}",
            "[red]Byzantine[/]" if p.byzantine else "honest",
            "-" if p.round is None else str(p.round),
            p.phase + (f" [red]{p.last_error[:40]}[/]" if p.last_error else ""),
            "-" if p.accuracy is None else f"{100 * p.accuracy:.1f} %",
            str(p.commits),
            str(p.votes),
            f"{p.gas:,}",
        )
    rt = Table(title="rounds", expand=False)
    for col in ("round", "status", "excluded peers", "accuracy", "peers agreeing"):
        rt.add_column(col)
    names = {p.address.lower(): p.name + (" (B)" if p.byzantine else "") for p in peers}
    for r in range(1, n_rounds + 1):
        v = rounds.get(r)
        if v is None:
            rt.add_row(str(r), "[dim]pending[/]", "", "", "")
            continue
        rt.add_row(
            str(r), "[green]finalized[/]" if v.finalized else "[yellow]open[/]",
            ", ".join(names.get(a.lower(), _short(a)) for a in v.excluded) or "-",
            "-" if v.accuracy is None else f"{100 * v.accuracy:.1f} %", str(v.agreed),
        )
    return Group(pt, rt)


def _check_inputs(peers: int, rounds: int, rule: str, attack: str, dataset: str, alpha: float, epochs: int,
                  timeout: float, workdir: Path | None) -> tuple[str, int]:
    """(resolved rule, number of Byzantine peers): every flag checked before anything starts, one line each."""
    from consensus.auto_rule import resolve_rule
    from consensus.errors import AggregationError
    from peer.byzantine.adversary import Adversary
    from peer.learning.tasks import TaskError, get_task
    from simulation.config import clamp_f

    if peers < 3:
        raise bad_input(f"--peers {peers}: the demo needs at least 3 peers (one of them Byzantine)",
                        hint="pass --peers 3 or more")
    for option, value in (("--rounds", rounds), ("--epochs", epochs)):
        if value < 1:
            raise bad_input(f"{option} must be >= 1, got {value}", hint=f"pass {option} 1 or more")
    if not alpha > 0 or not timeout > 0:
        raise bad_input(f"--alpha and --timeout must be positive, got {alpha} and {timeout}",
                        hint="e.g. --alpha 0.5 --timeout 600")
    if workdir is not None and workdir.exists() and not workdir.is_dir():
        raise bad_input(f"--workdir {workdir} is a file, not a folder", hint="pass a folder (created if missing)")
    try:
        get_task(dataset)
    except TaskError as exc:
        raise bad_input(f"--dataset {dataset!r}: {exc}", hint="use --dataset digits or breast_cancer") from None
    byzantine = 0 if attack == "none" else 1
    if byzantine:
        try:
            Adversary.parse(_attack_spec(attack))
        except ValueError as exc:
            raise bad_input(f"--attack {attack!r}: {exc}", hint="e.g. --attack sign_flip, or none") from None
    try:
        resolved = resolve_rule(rule, peers, byzantine)
        tolerated = clamp_f(resolved, peers, byzantine)
    except AggregationError as exc:
        raise bad_input(f"--rule {rule!r}: {exc}", hint="use --rule auto, or one of the rules named above") from None
    if tolerated != byzantine:
        raise bad_input(f"rule {resolved} cannot tolerate f={byzantine} with {peers} peers",
                        hint="use more peers (Krum needs n >= 2f+3, Bulyan n >= 4f+3) or --rule trimmed_mean")
    return resolved, byzantine


def demo(
    peers: int = typer.Option(5, "--peers", "-n", help="number of peer processes"),
    rounds: int = typer.Option(5, "--rounds", "-r", help="rounds to run"),
    rule: str = typer.Option("auto", "--rule",
                             help="aggregation rule; auto = the most uniform one for n and f (consensus.auto_rule)"),
    attack: str = typer.Option("sign_flip", "--attack", help="the Byzantine peer's attack; 'none' = all honest"),
    dataset: str = typer.Option("digits", "--dataset", help="digits or breast_cancer"),
    alpha: float = typer.Option(0.5, "--alpha", help="Dirichlet label skew of the peers' data (non-IID)"),
    epochs: int = typer.Option(2, "--epochs", help="local epochs per round"),
    gossip: bool = typer.Option(True, "--gossip/--no-gossip", help="libp2p gossip between peers (else IPFS only)"),
    workdir: Path | None = typer.Option(None, "--workdir", help="keep the federation here (default: a temp dir)"),
    timeout: float = typer.Option(600.0, "--timeout", help="give up after this many seconds"),
    live: bool = typer.Option(True, "--live/--no-live", help="live table (off: one line per round)"),
) -> None:
    """Run a whole federation locally: devnet + IPFS + N peer processes (one Byzantine), audit, claims, report."""
    console = Console()
    rule, byzantine = _check_inputs(peers, rounds, rule, attack, dataset, alpha, epochs, timeout, workdir)
    started = time.monotonic()
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="fedledger-demo-"))
    root.mkdir(parents=True, exist_ok=True)

    # Ctrl-C and SIGTERM both unwind through the `finally` below, which stops everything we started.
    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    procs: list[PeerProcess] = []
    ok = False
    try:
        with ExitStack() as stack:
            from devnet.anvil import AnvilStartError, start_anvil
            from devnet.ipfs import IpfsStartError, start_ipfs

            console.print(f"[bold]fedledger demo[/]: {peers} peers ({byzantine} Byzantine: {attack}), rule {rule}, "
                          f"{rounds} rounds, {dataset} Dirichlet α={alpha}; files in {root}")
            try:
                anvil = start_anvil(log_path=root / "anvil.log")
                stack.callback(anvil.stop)
                node = start_ipfs(offline=True, repo_dir=root / "ipfs")
                stack.callback(node.stop)
            except (AnvilStartError, IpfsStartError) as exc:
                raise UserError(f"cannot start the local services: {exc}", hint="run scripts/setup.sh first") from None
            console.print(f"devnet {anvil.rpc_url}   IPFS {node.api_url}")

            from devnet.bootstrap import LOCAL_ROUND_PARAMS, create_local_federation

            fed = create_local_federation(
                root / "federation", peers, rpc_url=anvil.rpc_url, ipfs_api=node.api_url, task=dataset,
                params=LOCAL_ROUND_PARAMS.replace(rule=rule, f=byzantine), partition="dirichlet", alpha=alpha,
                auditors=1, gossip=gossip, funding_wei=10**18 * rounds,
                peer_overrides={"training": {"local_epochs": epochs}},
            )
            console.print(f"federation {fed.contract} deployed (block {fed.deploy_block}), owned by its governor "
                          f"{fed.governor} (members admit by vote), auditor {fed.auditors[0].address}")

            lock = threading.Lock()
            views = [PeerView(p.name, p.address, byzantine and i == peers - 1) for i, p in enumerate(fed.peers)]
            round_views: dict[int, RoundView] = {}

            def on_event(view: PeerView, rec: dict) -> None:
                with lock:
                    r = rec.get("round")
                    if isinstance(r, int):
                        view.round = r
                    view.phase = f"{rec.get('phase', '')} {rec.get('event', '')}".strip()
                    if rec.get("level") == "error":
                        view.last_error = str(rec.get("message", ""))
                    gas = rec.get("gas")
                    if isinstance(gas, int) and rec.get("event") == "mined":
                        view.gas += gas
                        if rec.get("phase") == "commit":
                            view.commits += 1
                        elif rec.get("phase") == "vote":
                            view.votes += 1
                    if rec.get("phase") == "finalized" and isinstance(r, int):
                        rv = round_views.setdefault(r, RoundView(r))
                        rv.finalized = True
                        if rec.get("excluded"):
                            rv.excluded = tuple(rec["excluded"])
                        if rec.get("accuracy") is not None:
                            view.accuracy = float(rec["accuracy"])
                            rv.accuracy = view.accuracy
                        if rec.get("agreed"):
                            rv.agreed += 1
                        view.finalized.add(r)

            for p, view in zip(fed.peers, views):
                args = _cli("peer", "run", "--config", str(p.config_path), "--json", "--max-rounds", str(rounds))
                if view.byzantine:
                    args += ["--attack", _attack_spec(attack)]
                procs.append(PeerProcess(view, args, root / f"{p.name}.log", on_event))

            title = f"fedledger demo — {rule}, {peers} peers"
            deadline = time.monotonic() + timeout
            last_printed = 0

            def finished() -> bool:
                return all(pp.popen.poll() is not None for pp in procs)

            if live and console.is_terminal:
                with Live(_render(views, round_views, title, rounds), console=console, refresh_per_second=4) as lv:
                    while not finished() and time.monotonic() < deadline:
                        time.sleep(0.25)
                        with lock:
                            lv.update(_render(views, round_views, title, rounds))
                    with lock:
                        lv.update(_render(views, round_views, title, rounds))
            else:
                while not finished() and time.monotonic() < deadline:
                    time.sleep(0.5)
                    with lock:
                        done = sorted(r for r, v in round_views.items() if v.finalized)
                    for r in done:
                        if r > last_printed:
                            v = round_views[r]
                            console.print(f"round {r} finalized  excluded={list(v.excluded)}  accuracy="
                                          f"{'-' if v.accuracy is None else f'{100 * v.accuracy:.1f} %'}")
                            last_printed = r
                console.print(_render(views, round_views, title, rounds))
            if not finished():
                console.print(f"[red]timeout after {timeout:.0f} s; stopping the peers[/]")
            for pp in procs:
                pp.stop()

            # The chain is the truth: check finalization there, not from the logs.
            from ledger_tools.blobstore import IpfsBlobStore
            from ledger_tools.chain import FederationLedger

            ledger = FederationLedger(anvil.rpc_url, fed.contract)
            finals = {f.round: f for f in ledger.finalizations()}
            all_final = all(r in finals for r in range(1, rounds + 1))
            console.print(f"rounds finalized on chain: {sorted(finals)} of 1..{rounds}")
            byz_line = (_byzantine_summary(fed.peers[-1].address, finals, IpfsBlobStore(node.api_url), peers)
                        if byzantine else None)
            if byz_line:
                console.print(byz_line)

            chain_args = ["--rpc", anvil.rpc_url, "--contract", fed.contract, "--ipfs", node.api_url,
                          "--cache-dir", str(root / "cache")]
            auditor = fed.auditors[0]
            verify = subprocess.run(
                _cli("audit", *chain_args, "verify", "--state-dir", str(auditor.state_dir),
                     "--password-file", str(fed.password_file), "--json"),
                capture_output=True, text=True, timeout=300,
            )
            verdict = {}
            try:
                verdict = json.loads(verify.stdout.strip().splitlines()[-1]) if verify.stdout.strip() else {}
            except ValueError:
                pass
            audit_ok = verify.returncode == 0 and bool(verdict.get("ok"))
            if audit_ok:
                console.print(f"[bold green]auditor: all {len(verdict.get('rounds_checked', []))} rounds verified[/]")
            else:
                console.print(f"[bold red]auditor: verification failed[/] {verify.stdout[-400:]} "
                              f"{verify.stderr[-400:]}")

            claims_ok = True
            for p, view in zip(fed.peers, views):
                if view.byzantine:
                    continue
                res = subprocess.run(_cli("rewards", *chain_args, "claim", "--state-dir", str(p.state_dir),
                                          "--password-file", str(fed.password_file)),
                                     capture_output=True, text=True, timeout=120)
                # the claim command's own message, unwrapped (rich wraps it at 80 columns in a pipe)
                line = " ".join((res.stdout if res.returncode == 0 else res.stderr).split())
                claims_ok &= res.returncode == 0
                paid = "[green]paid[/]" if res.returncode == 0 else "[red]failed[/]"
                console.print(f"  claim {p.name}: {paid}  {line}")

            report_path = root / "report.html"
            rep = subprocess.run(
                _cli("audit", *chain_args, "report", "--out", str(report_path), "--task", dataset),
                capture_output=True, text=True, timeout=300,
            )
            if rep.returncode == 0:
                console.print(f"HTML report: [bold]{report_path}[/]")
            else:
                console.print(f"[yellow]report failed:[/] {rep.stderr.strip()[-300:]}")
            ok = all_final and audit_ok
            wall = time.monotonic() - started
            console.print(("[bold green]demo succeeded[/]" if ok else "[bold red]demo failed[/]")
                          + f" in {wall:.0f} s (claims {'paid' if claims_ok else 'not all paid'}); logs in {root}")
            (root / "demo-summary.json").write_text(json.dumps({
                "ok": ok, "rounds_finalized": sorted(finals), "audit_ok": audit_ok, "claims_ok": claims_ok,
                "byzantine": byz_line, "wall_seconds": round(wall, 1), "contract": fed.contract,
                "report": str(report_path) if rep.returncode == 0 else None,
                "excluded": {r: list(f.excluded) for r, f in finals.items()},
            }, indent=1))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted: stopping every process the demo started[/]")
        raise typer.Exit(130) from None
    finally:
        for pp in procs:
            pp.stop(timeout=5)
        for s, handler in previous.items():
            signal.signal(s, handler)
    if not ok:
        raise typer.Exit(1)
