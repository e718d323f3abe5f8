"""`fedledger simulate`: many peers in one process, the real protocol code, for experiments.

By default it starts its own devnet (anvil) and IPFS node on free loopback ports, deploys a fresh
FederationLedger with every simulated peer as a member, runs the rounds (sealed blobs on IPFS, commitments
and votes on chain) and stops both services at the end. `--rpc-url/--ipfs-api` use running services instead;
`--no-ledger` skips chain, IPFS and sealing altogether (same model trajectory, much faster).
Writes `simulation.json` (summary, config, per-round accuracy / exclusions / rewards / phase times / gas) and two
plots; the summary printed at the end sets honest against Byzantine peers: exclusions, unrewarded rounds, rewards.
"""
from __future__ import annotations

import json
import time
from contextlib import ExitStack
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fedledger.errors import UserError, bad_input
from fedledger.service_errors import check_ipfs, check_url, service_errors
from peer.learning.tasks import TaskError, get_task
from simulation.config import ATTACKS, SimConfig, SimError
from simulation.plots import write_plots
from simulation.records import RoundRecord


def simulate(
    peers: int = typer.Option(20, "--peers", "-n", help="number of simulated peers (up to ~100)"),
    byzantine_fraction: float = typer.Option(0.0, "--byzantine-fraction", "-b", help="fraction of Byzantine peers"),
    attack: str = typer.Option("none", "--attack", help=f"one of: {', '.join(ATTACKS)}"),
    rule: str = typer.Option("multi_krum", "--rule",
                             help="auto (the most uniform rule for n and f), fedavg krum multi_krum trimmed_mean "
                                  "median bulyan centered_clipping, or <pre>+<rule> "
                                  "(nnm, arc, bucketing, rescale, dedup)"),
    f: int | None = typer.Option(None, "--f", help="the federation's f (default: the number of Byzantine peers); "
                                                   "refused above what the rule tolerates for --peers"),
    rounds: int = typer.Option(10, "--rounds", "-r"),
    dataset: str = typer.Option("digits", "--dataset", help="digits, breast_cancer or csv:PATH:LABEL"),
    alpha: float = typer.Option(1.0, "--alpha", help="Dirichlet label skew (small = more non-IID)"),
    iid: bool = typer.Option(False, "--iid", help="IID split instead of Dirichlet(alpha)"),
    local_epochs: int = typer.Option(2, "--local-epochs"),
    batch_size: int = typer.Option(16, "--batch-size"),
    lr: float = typer.Option(0.05, "--lr"),
    hidden: int | None = typer.Option(None, "--hidden", help="digits MLP width (1000 ≈ 1M parameters)"),
    seed: int = typer.Option(0, "--seed"),
    no_ledger: bool = typer.Option(False, "--no-ledger", help="in-memory only: no chain, no IPFS, no sealing"),
    rpc_url: str | None = typer.Option(None, "--rpc", "--rpc-url",
                                       help="use this devnet (anvil) instead of starting one"),
    ipfs_api: str | None = typer.Option(None, "--ipfs", "--ipfs-api",
                                        help="use this IPFS API instead of starting a node"),
    gossip: bool = typer.Option(False, "--gossip", help="take blobs from the in-process gossip cache, not IPFS"),
    out: Path = typer.Option(Path("sim-results"), "--out", "-o", help="directory for simulation.json and plots"),
    as_json: bool = typer.Option(False, "--json", help="print the result JSON on stdout instead of a table"),
) -> None:
    """Simulate a federation of many peers in one process (real consensus code; real chain + IPFS unless
    --no-ledger)."""
    console = Console(stderr=as_json)
    config = _config(peers, byzantine_fraction, attack, rule, f, rounds, dataset, iid, alpha, local_epochs,
                     batch_size, lr, hidden, seed)
    byzantine, rule = config.byzantine, config.rule
    _check_out(out)
    if not no_ledger and rpc_url is not None:
        check_url(rpc_url, "--rpc")
    if not no_ledger and ipfs_api is not None:
        check_ipfs(ipfs_api, "--ipfs")

    def show(record: RoundRecord) -> None:
        if as_json:
            return
        console.print(
            f"round {record.round:>3}  acc {100 * record.accuracy:5.1f} %  "
            f"{'finalized' if record.finalized else '[red]not finalized[/]'}  "
            f"excluded {len(record.excluded)} (Byzantine {record.excluded_byzantine}), "
            f"not rewarded: Byzantine {record.rejected_byzantine} honest {record.rejected_honest}  "
            f"gas {record.gas_used:,}  {record.wall_seconds:.2f} s"
        )

    from ledger_tools.blobstore import BlobStoreError
    from ledger_tools.chain import LedgerError
    from simulation.chain_transport import ChainTransport
    from simulation.engine import SimEngine

    started = time.perf_counter()
    with ExitStack() as stack:
        transport = None
        urls = (None, None)
        if not no_ledger:
            urls = _services(stack, rpc_url, ipfs_api, console)
        try:
            with service_errors(urls[0]):
                if not no_ledger:
                    transport = ChainTransport(*urls, gossip=gossip)
                engine = SimEngine(config, transport, on_round=show)
                result = engine.run()
        except SimError as exc:
            raise UserError(str(exc)) from None
        except TaskError as exc:
            raise bad_input(f"--dataset {dataset!r}: {exc}", hint=DATASET_HINT) from None
        except (LedgerError, BlobStoreError) as exc:  # the expected service failures, in one line
            raise UserError(f"{type(exc).__name__}: {exc}", hint="is the devnet / IPFS node still running?") from None
    wall = time.perf_counter() - started
    doc = result.to_json() | {"wall_seconds": round(wall, 2), "mode": "no-ledger" if no_ledger else "ledger"}
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "simulation.json").write_text(json.dumps(doc, indent=1))
        plots = write_plots(result, out)
    except OSError as exc:
        raise bad_input(f"cannot write the results to {out}: {exc.strerror or exc}", hint=OUT_HINT) from exc
    if as_json:
        print(json.dumps(doc))
        return
    table = Table(title="simulation summary")
    table.add_column("metric")
    table.add_column("value")
    table.add_row("peers / Byzantine", f"{peers} / {byzantine} ({attack})")
    table.add_row("rule, f", f"{rule}, {result.config['effective_f']}")
    table.add_row("parameters", f"{result.config['num_parameters']:,}")
    table.add_row("accuracy genesis → final",
                  f"{100 * result.genesis_accuracy:.1f} % → {100 * result.final_accuracy:.1f} %")
    table.add_row("rounds finalized", f"{sum(r.finalized for r in result.rounds)} / {len(result.rounds)}")
    for name, value in _honest_vs_byzantine(result.summary()):
        table.add_row(name, value)
    if not no_ledger:
        gas = [r.gas_used for r in result.rounds]
        table.add_row("gas per round (mean)", f"{sum(gas) // max(1, len(gas)):,}")
        table.add_row("contract", result.ledger.get("contract", ""))
    table.add_row("final model hash", result.final_model_hash[:16] + "…")
    table.add_row("wall time", f"{wall:.1f} s")
    table.add_row("results", f"{out / 'simulation.json'}, {', '.join(str(p) for p in plots)}")
    console.print(table)


DATASET_HINT = "digits, breast_cancer, or csv:PATH:LABEL with an existing CSV file and its label column"
OUT_HINT = "pass -o a folder (created if missing), not a file"


def _config(peers: int, byzantine_fraction: float, attack: str, rule: str, f: int | None, rounds: int,
            dataset: str, iid: bool, alpha: float, local_epochs: int, batch_size: int, lr: float,
            hidden: int | None, seed: int) -> SimConfig:
    """The simulation's config from the flags, every value checked before anything starts (one line each)."""
    from consensus.errors import AggregationError
    from consensus.feasibility import max_f

    if not 0 <= byzantine_fraction < 1:
        raise bad_input(f"--byzantine-fraction must be in [0, 1), got {byzantine_fraction}",
                        hint="e.g. -b 0.2 (a fifth of the peers)")
    byzantine = int(round(byzantine_fraction * peers))
    if byzantine and attack == "none":
        raise bad_input("Byzantine peers need an attack", hint=f"add --attack, one of {', '.join(ATTACKS[1:])}")
    for option, value, low in (("--peers", peers, 2), ("--rounds", rounds, 1), ("--local-epochs", local_epochs, 1),
                               ("--batch-size", batch_size, 1), ("--hidden", hidden, 1)):
        if value is not None and value < low:
            raise bad_input(f"{option} must be >= {low}, got {value}", hint=f"pass {option} {low} or more")
    if not lr > 0 or not alpha > 0:
        raise bad_input(f"--lr and --alpha must be positive, got {lr} and {alpha}", hint="e.g. --lr 0.05 --alpha 1")
    try:
        get_task(dataset)  # a missing CSV file or an unknown task: now, not after the services started
        config = SimConfig(
            task=dataset, peers=peers, byzantine=byzantine, attack=attack if byzantine else "none", rule=rule, f=f,
            rounds=rounds, alpha=None if iid else alpha, local_epochs=local_epochs, batch_size=batch_size, lr=lr,
            hidden=hidden, seed=seed,
        )
        highest = max_f(config.rule, peers)
    except TaskError as exc:
        raise bad_input(f"--dataset {dataset!r}: {exc}", hint=DATASET_HINT) from None
    except AggregationError as exc:
        raise bad_input(str(exc), hint="rules: auto, fedavg, krum, multi_krum, trimmed_mean, median, bulyan, "
                                       "centered_clipping, optionally behind nnm+, arc+, bucketing+, dedup+ "
                                       "or rescale+") from None
    except SimError as exc:
        raise bad_input(str(exc), hint="see `fedledger simulate --help`") from None
    if f is not None and not 0 <= f <= highest:
        feasible = f"0..{highest}" if highest >= 0 else "none"
        raise bad_input(f"--f {f} is not feasible: rule {config.rule} with {peers} peers tolerates f in {feasible}",
                        hint="lower --f, add --peers, or pick another --rule (see docs/aggregators.md)")
    return config


def _check_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise bad_input(f"-o/--out {out} is a file, not a folder", hint=OUT_HINT)


def _honest_vs_byzantine(summary: dict) -> list[tuple[str, str]]:
    """Summary rows: who the rule excluded and who it paid, honest vs Byzantine (peer-rounds, wei, ETH, share)."""
    def paid(kind: str) -> str:
        wei = int(summary[f"rewards_{kind}_wei"])
        share = summary[f"rewards_{kind}_share"]
        return f"{wei / 10**18:.6f} ETH ({wei} wei" + ("" if share is None else f", {100 * share:.1f} %") + ")"

    return [
        ("excluded: honest / Byzantine",
         f"{summary['excluded_honest']} / {summary['excluded_byzantine']} (peer-rounds)"),
        ("not rewarded: honest / Byzantine",
         f"{summary['not_rewarded_honest']} / {summary['not_rewarded_byzantine']} (peer-rounds, excluded or score 0)"),
        ("rewards to honest peers", paid("honest")),
        ("rewards to Byzantine peers", paid("byzantine")),
    ]


def _services(stack: ExitStack, rpc_url: str | None, ipfs_api: str | None, console: Console) -> tuple[str, str]:
    """URLs of the chain and IPFS node: the given ones, or freshly started ones stopped when `stack` closes."""
    if rpc_url is None:
        from devnet.anvil import AnvilStartError, start_anvil

        try:
            anvil = start_anvil()
        except AnvilStartError as exc:
            raise UserError(f"cannot start the devnet: {exc}",
                            hint="run scripts/setup.sh, or pass --no-ledger") from None
        stack.callback(anvil.stop)
        rpc_url = anvil.rpc_url
        console.print(f"[dim]devnet (anvil) on {rpc_url}[/]")
    if ipfs_api is None:
        from devnet.ipfs import IpfsStartError, start_ipfs

        try:
            node = start_ipfs(offline=True)
        except IpfsStartError as exc:
            raise UserError(f"cannot start the IPFS node: {exc}",
                            hint="run scripts/setup.sh, or pass --no-ledger") from None
        stack.callback(node.stop)
        ipfs_api = node.api_url
        console.print(f"[dim]IPFS node on {ipfs_api}[/]")
    return rpc_url, ipfs_api
