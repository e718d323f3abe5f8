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

from fedledger.errors import UserError
from simulation.config import ATTACKS, SimConfig, SimError
from simulation.plots import write_plots
from simulation.records import RoundRecord


def simulate(
    peers: int = typer.Option(20, "--peers", "-n", help="number of simulated peers (up to ~100)"),
    byzantine_fraction: float = typer.Option(0.0, "--byzantine-fraction", "-b", help="fraction of Byzantine peers"),
    attack: str = typer.Option("none", "--attack", help=f"one of: {', '.join(ATTACKS)}"),
    rule: str = typer.Option("multi_krum", "--rule",
                             help="fedavg krum multi_krum trimmed_mean median bulyan nnm+<rule>"),
    f: int | None = typer.Option(None, "--f", help="the federation's f (default: the number of Byzantine peers)"),
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
    if not 0 <= byzantine_fraction < 1:
        raise UserError(f"--byzantine-fraction must be in [0, 1), got {byzantine_fraction}")
    byzantine = int(round(byzantine_fraction * peers))
    if byzantine and attack == "none":
        raise UserError("Byzantine peers need an attack", hint=f"add --attack, one of {', '.join(ATTACKS[1:])}")
    try:
        config = SimConfig(
            task=dataset, peers=peers, byzantine=byzantine, attack=attack if byzantine else "none", rule=rule, f=f,
            rounds=rounds, alpha=None if iid else alpha, local_epochs=local_epochs, batch_size=batch_size, lr=lr,
            hidden=hidden, seed=seed,
        )
    except SimError as exc:
        raise UserError(str(exc)) from None
    import consensus

    base_rule = rule.split("+")[-1]
    if base_rule not in consensus.RULES:
        raise UserError(f"unknown rule {rule!r}", hint=f"one of {', '.join(sorted(consensus.RULES))}, or nnm+<rule>")

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
        if not no_ledger:
            transport = ChainTransport(*_services(stack, rpc_url, ipfs_api, console), gossip=gossip)
        try:
            engine = SimEngine(config, transport, on_round=show)
            result = engine.run()
        except SimError as exc:
            raise UserError(str(exc)) from None
        except (LedgerError, BlobStoreError) as exc:  # the expected service failures, in one line
            raise UserError(f"{type(exc).__name__}: {exc}", hint="is the devnet / IPFS node still running?") from None
    wall = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    doc = result.to_json() | {"wall_seconds": round(wall, 2), "mode": "no-ledger" if no_ledger else "ledger"}
    (out / "simulation.json").write_text(json.dumps(doc, indent=1))
    plots = write_plots(result, out)
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
