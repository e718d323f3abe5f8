"""`fedledger devnet`: bring the local chain + IPFS node up and down, inspect them, deploy a federation.

On several machines: the chain host runs `up --host ADDR`; each institution runs `up --ipfs-only --host ADDR
--ipfs-peer …` (its own IPFS node, kept connected to the others'); `connect` adds a peer to a running node.
"""
from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from devnet.errors import DevnetError
from fedledger.devnet_deploy_cmd import deploy
from fedledger.errors import EXIT_UNREACHABLE, UserError, bad_input
from fedledger.service_errors import check_ipfs, check_url

app = typer.Typer(help="Local devnet: anvil (chain) + IPFS node, and federation deployment.", no_args_is_help=True)
console = Console()

StateDir = Annotated[Path, typer.Option("--state-dir", help="Where pids, the chain state and the IPFS repo live.")]
_DEFAULT_STATE_DIR = Path(".fedledger/devnet")


def _services():
    from devnet import services  # lazy: keeps `fedledger --help` fast

    return services


def _records():
    from devnet import records

    return records


def _devnet_user_error(exc: Exception) -> UserError:
    if isinstance(exc, DevnetError):
        return UserError(exc.message, hint=exc.hint)
    if isinstance(exc, OSError):  # e.g. --state-dir names a file
        return UserError(str(exc), hint="--state-dir names a folder (created if missing) this user can write")
    return UserError(str(exc))


def _check_state_dir(state_dir: Path) -> None:
    if state_dir.exists() and not state_dir.is_dir():
        raise bad_input(f"--state-dir {state_dir} is a file, not a folder",
                        hint="--state-dir names a folder (created if missing) this user can write")


def _print_services(up: Any, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_services_json(up)))
        return
    table = Table(title=f"devnet ({up.state_dir})")
    for col in ("service", "url", "pid", "action"):
        table.add_column(col)
    table.add_column("detail", overflow="fold")
    actions = {"restarted": "[yellow]restarted[/]", "running": "running (untouched)"}
    if up.chain is not None:
        table.add_row("chain", up.chain.url, str(up.chain.pid), actions.get(up.actions.get("chain", ""), "started"),
                      f"state {up.chain.extra.get('state_file')}")
    table.add_row("ipfs", up.ipfs.url, str(up.ipfs.pid), actions.get(up.actions.get("ipfs", ""), "started"),
                  f"swarm {up.ipfs_swarm or '(offline)'}")
    console.print(table)
    _print_swarm(up)


def _print_swarm(up: Any) -> None:
    """The swarm address on a line of its own: the table may wrap it, and other machines must copy it whole."""
    if up.ipfs_swarm:
        print(f"IPFS swarm address (the other machines' --ipfs-peer / devnet connect): {up.ipfs_swarm}")


def _services_json(up: Any) -> dict[str, Any]:
    """What other machines need: the chain RPC URL, the IPFS API, and the IPFS swarm address to peer with."""
    return {"state_dir": str(up.state_dir), "rpc": up.rpc_url, "ipfs_api": up.ipfs.url,
            "ipfs_http": up.ipfs.extra.get("http_url"), "ipfs_peer_id": up.ipfs.extra.get("peer_id"),
            "ipfs_swarm": up.ipfs_swarm,
            "pids": {r.name: r.pid for r in up.records()}, **({"actions": up.actions} if up.actions else {})}


@app.command()
def up(
    chain_port: Annotated[int, typer.Option(min=0, max=65535, help="anvil JSON-RPC port (0 = any free port).")] = 8545,
    ipfs_port: Annotated[int, typer.Option(min=0, max=65535, help="IPFS RPC API port (0 = any free port).")] = 5001,
    state_dir: StateDir = _DEFAULT_STATE_DIR,
    detach: Annotated[bool, typer.Option("--detach", "-d", help="Start in the background and return.")] = False,
    host: Annotated[str, typer.Option(
        "--host", help="Address anvil and the IPFS node (API and swarm) bind, e.g. this machine's LAN IP so "
                       "other machines can reach them; the recorded URLs use it.")] = "127.0.0.1",
    ipfs_only: Annotated[bool, typer.Option(
        "--ipfs-only", help="Only the IPFS node (an institution's own node; the chain runs elsewhere).")] = False,
    swarm_port: Annotated[int, typer.Option(
        "--swarm-port", min=0, max=65535, help="IPFS swarm port the other nodes dial (0 = any free port).")] = 0,
    ipfs_peer: Annotated[list[str] | None, typer.Option(
        "--ipfs-peer", help="Another node's IPFS swarm multiaddr (/ip4/H/tcp/P/p2p/ID, repeatable): kept "
                            "connected, re-dialled while down, remembered across restarts.")] = None,
    ipfs_api_host: Annotated[str | None, typer.Option(
        "--ipfs-api-host", help="Address the IPFS API binds (default: --host; with --ipfs-only: 127.0.0.1, the "
                                "API serving only this machine's peer while the swarm faces the others).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoints as one JSON object.")] = False,
) -> None:
    """Start anvil and the IPFS node (on loopback unless --host); the chain and pinned blobs persist in --state-dir.

    After a crash, `up` again restarts only the services that are down, on their recorded ports (the chain from its
    state file); a running one is left untouched."""
    import ipaddress

    for option, value in (("--host", host), ("--ipfs-api-host", ipfs_api_host)):
        try:
            if value is not None:
                ipaddress.ip_address(value)
        except ValueError:
            raise UserError(f"{option} {value!r} is not an IP address",
                            hint="pass an address of this machine, e.g. 127.0.0.1 or its LAN IP (`ip -br addr`)",
                            exit_code=2) from None
    _check_state_dir(state_dir)
    from devnet.ipfs import IpfsPeeringError, check_peer_multiaddr

    try:
        for addr in ipfs_peer or []:
            check_peer_multiaddr(addr)
    except IpfsPeeringError as exc:
        raise bad_input(exc.message, exc.hint) from exc
    services = _services()
    try:
        started = services.devnet_up(state_dir, chain_port=chain_port, ipfs_port=ipfs_port, host=host,
                                     ipfs_only=ipfs_only, swarm_port=swarm_port, ipfs_peers=ipfs_peer or [],
                                     ipfs_api_host=ipfs_api_host or ("127.0.0.1" if ipfs_only else host))
    except (DevnetError, OSError) as exc:
        raise _devnet_user_error(exc) from exc
    except Exception as exc:  # ToolMissing and friends: still one line
        raise UserError(str(exc), hint="run `bash scripts/setup.sh` to install the toolchain") from exc
    _print_services(started, as_json)
    if detach:
        if not as_json:
            console.print(f"devnet up (detached); stop it with `fedledger devnet down --state-dir {state_dir}`")
        return
    console.print("devnet up; Ctrl-C stops it")
    stop = {"now": False}

    def _request_stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _request_stop)
    try:
        while not stop["now"]:
            if not all(s.alive for s in services.devnet_status(state_dir)):
                console.print("[yellow]a devnet service stopped answering; shutting down[/]")
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        pass
    services.devnet_down(state_dir)
    console.print("devnet stopped")


@app.command()
def down(state_dir: StateDir = _DEFAULT_STATE_DIR) -> None:
    """Stop the devnet gracefully (anvil dumps its state, IPFS closes its repo) and wait for both."""
    services = _services()
    try:
        stopped = services.devnet_down(state_dir)
    except DevnetError as exc:
        raise _devnet_user_error(exc) from exc
    if not stopped:
        console.print(f"devnet is not running (no {_records().services_path(state_dir)})")
        return
    for name, was_running in stopped:
        console.print(f"{name}: {'stopped' if was_running else 'was not running'}")


@app.command()
def status(
    state_dir: StateDir = _DEFAULT_STATE_DIR,
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoints (and liveness) as JSON.")] = False,
) -> None:
    """Show each service on its own: URL, pid, state (up / not answering / down), block number / IPFS swarm address.

    Exit 1 unless all are up."""
    services = _services()
    try:
        rows = services.devnet_status(state_dir)
        running = _records().read_services(state_dir)
    except DevnetError as exc:
        raise _devnet_user_error(exc) from exc
    if not rows or running is None:
        console.print(f"devnet is not running (no {_records().services_path(state_dir)})")
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps({**_services_json(running), "alive": {row.name: row.alive for row in rows},
                               "state": {row.name: row.state for row in rows},
                               "detail": {row.name: row.detail for row in rows}}))
        raise typer.Exit(0 if all(row.alive for row in rows) else 1)
    table = Table(title=f"devnet ({Path(state_dir).resolve()})")
    for col in ("service", "url", "pid", "state", "detail"):
        table.add_column(col, overflow="fold")
    colour = {"up": "green", "not answering": "yellow"}
    for row in rows:
        table.add_row(row.name, row.url, str(row.pid), f"[{colour.get(row.state, 'red')}]{row.state}[/]", row.detail)
    console.print(table)
    _print_swarm(running)
    down = [row.name for row in rows if row.state == "down"]
    if down:
        print(f"hint: `fedledger devnet up -d --state-dir {state_dir}` restarts {' and '.join(down)} on the recorded "
              "port(s), leaving the running service untouched")
    if not all(row.alive for row in rows):
        raise typer.Exit(1)


def _default_rpc(state_dir: Path) -> str:
    services = _services()
    try:
        running = _records().read_services(state_dir)
    except DevnetError:
        running = None
    if running is not None and running.rpc_url:
        return running.rpc_url
    return f"http://127.0.0.1:{services.DEFAULT_CHAIN_PORT}"


@app.command()
def connect(
    addrs: Annotated[list[str], typer.Argument(help="Other nodes' IPFS swarm multiaddrs (/ip4/H/tcp/P/p2p/ID).")],
    state_dir: StateDir = _DEFAULT_STATE_DIR,
) -> None:
    """Connect this machine's running IPFS node to other nodes now, and keep it connected (like --ipfs-peer).

    Exit 2 when an address is malformed (nothing is added), 1 when a node could not be reached now (it is still
    remembered and re-dialled every few seconds)."""
    from devnet.ipfs import IpfsPeeringError, add_peering, check_peer_multiaddr, swarm_connect

    try:
        for addr in addrs:
            check_peer_multiaddr(addr)
    except IpfsPeeringError as exc:
        raise bad_input(exc.message, exc.hint) from exc
    running = _records().read_services(state_dir)
    if running is None:
        raise UserError(f"no IPFS node running from {state_dir}",
                        hint="start it with `fedledger devnet up --ipfs-only --host ADDR -d` (or pass --state-dir)")
    add_peering(Path(running.ipfs.extra.get("repo", Path(state_dir) / "ipfs")), addrs)
    failed = 0
    for addr in addrs:
        try:
            swarm_connect(running.ipfs.extra["http_url"], addr)
            print(f"{addr}  connected")
        except IpfsPeeringError as exc:
            failed += 1
            print(f"{addr}  not reachable now ({exc.message}); re-dialled every few seconds")
    if failed:
        raise typer.Exit(1)


app.command("deploy")(deploy)


@app.command()
def fund(
    addresses: Annotated[list[str], typer.Argument(help="Addresses to fund (e.g. the ones `peer init` printed).")],
    eth: Annotated[float, typer.Option("--eth", help="ETH to send to each address.")] = 10.0,
    rpc: Annotated[str | None, typer.Option(help="Chain JSON-RPC URL (default: the running devnet's).")] = None,
    state_dir: StateDir = _DEFAULT_STATE_DIR,
) -> None:
    """Send --eth ETH from an anvil dev account to each address (devnet only), so members can pay gas."""
    from decimal import Decimal

    from devnet.anvil import rpc_answers
    from devnet.funding import WEI_PER_ETH, FundingError, parse_addresses
    from devnet.funding import fund as fund_addresses

    if not 0 < eth < float("inf"):
        raise bad_input(f"--eth {eth:g} is not a positive amount", hint="--eth N with N > 0, e.g. --eth 10")
    wei = int(Decimal(str(eth)) * WEI_PER_ETH)
    try:
        parse_addresses(addresses)
    except FundingError as exc:
        raise bad_input(exc.message, exc.hint) from exc
    rpc_url = check_url(rpc, "--rpc") if rpc else _default_rpc(state_dir)
    if rpc_answers(rpc_url, timeout=3.0) is None:
        raise UserError(f"cannot reach a JSON-RPC node at {rpc_url}", exit_code=EXIT_UNREACHABLE,
                        hint="start the devnet with `fedledger devnet up -d`, or pass --rpc URL")
    try:
        funded = fund_addresses(rpc_url, addresses, wei)
    except FundingError as exc:
        raise UserError(exc.message, hint=exc.hint) from exc
    for item in funded:
        print(f"{item.address}  balance {Decimal(item.balance_wei) / WEI_PER_ETH:f} ETH  (tx {item.tx_hash})")


@app.command()
def genesis(
    task: Annotated[str, typer.Option(help="digits | breast_cancer | csv:PATH:LABEL")] = "digits",
    ipfs: Annotated[str | None, typer.Option("--ipfs", "--ipfs-api", envvar="FEDLEDGER_IPFS",
                                                help="IPFS API (default: the running devnet's node).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the genesis weights.")] = 0,
    scale_bits: Annotated[int, typer.Option(help="Codec scale 2^-scale_bits (must match the config).")] = 20,
    state_dir: StateDir = _DEFAULT_STATE_DIR,
) -> None:
    """Build the task's genesis model, add it to IPFS and print the config fields that pin it on chain.

    Prints `model_spec_hash`, `genesis_model_hash` and `genesis_model_cid` as JSON, ready to paste into the
    federation config that `fedledger devnet deploy` reads.
    """
    import json

    import consensus
    from consensus.codec import MAX_SCALE_BITS
    from ledger_tools.blobstore import BlobStoreError, IpfsBlobStore
    from peer.learning.tasks import TaskError, get_task

    if not 0 <= scale_bits <= MAX_SCALE_BITS:
        raise UserError(f"--scale-bits {scale_bits} is out of range 0..{MAX_SCALE_BITS}",
                        hint="keep the default 20 unless the federation config's scale_bits says otherwise",
                        exit_code=2)
    if ipfs is not None:
        check_ipfs(ipfs, "--ipfs")
    try:
        the_task = get_task(task)
    except TaskError as exc:
        raise bad_input(str(exc), hint="tasks: digits, breast_cancer, csv:PATH:LABEL") from exc
    if ipfs is None:
        try:
            running = _records().read_services(state_dir)
        except DevnetError:
            running = None
        if running is None:
            raise UserError("no IPFS API given and no local devnet running",
                            hint="start one with `fedledger devnet up -d` or pass --ipfs URL")
        ipfs = running.ipfs_api_url
    model = consensus.encode(the_task.genesis_state(seed=seed), scale_bits=scale_bits)
    try:
        cid = IpfsBlobStore(ipfs).add(model)
    except BlobStoreError as exc:
        raise UserError(f"could not add the genesis model to IPFS at {ipfs}: {exc}",
                        hint="check that the IPFS (Kubo RPC) API is reachable") from exc
    print(json.dumps({
        "task": the_task.task_id,
        "model_spec_hash": "0x" + the_task.model_spec().spec_hash().hex(),
        "genesis_model_hash": "0x" + consensus.update_hash(model).hex(),
        "genesis_model_cid": cid,
        "scale_bits": scale_bits,
    }, indent=2))


from fedledger import devnet_config_cmd as _devnet_config_cmd  # noqa: E402,F401  registers `devnet config`
