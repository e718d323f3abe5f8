"""`fedledger peer run`: run a member's node (the round loop) until stopped or `--max-rounds` settled."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import tomllib
from pathlib import Path
from typing import Any

import typer

from fedledger.errors import UserError
from fedledger.peer_cmd import app, config_file_error, read_password
from fedledger.service_errors import service_errors
from peer.startup_wait import DEFAULT_BUDGET as DEFAULT_WAIT


def build_node(config, password: str, *, json_log: bool = False, start_gossip: bool = True,
               wait_for_services: float = 0.0):
    """Wire a PeerNode from its config: task + data, identity, chain, IPFS, gossip, adversary.

    Local inputs (the task and the institution's own data) are checked first, so a bad CSV file is reported
    before any network endpoint is contacted; then it waits up to `wait_for_services` seconds for a chain or
    IPFS node that does not answer yet. Returns (node, gossip); gossip is not started yet."""
    from ledger_tools.blobstore import IpfsBlobStore
    from ledger_tools.chain import FederationLedger, LedgerError
    from peer.crypto.identity import IdentityError, PeerIdentity
    from peer.learning.local_data import load_training_data
    from peer.learning.tasks import TaskError, get_task
    from peer.loop.node import NodeLog, PeerNode
    from peer.loop.state import StateError
    from peer.net.gossip_key import gossip_seed

    adversary = _adversary(config)
    try:
        task = get_task(config.task)
        data = load_training_data(config.data, task, adversary)  # the institution's data: fail now, clearly
    except TaskError as exc:
        raise UserError(str(exc), hint="check --data / --label (or --task)", exit_code=2) from exc
    try:
        identity = PeerIdentity.load(config.state_dir, password)
    except IdentityError as exc:
        raise UserError(str(exc), hint="run `fedledger peer init --state-dir DIR` first") from exc
    nlog = NodeLog(identity.address, config.name, json_mode=json_log)
    ledger = FederationLedger(config.rpc_url, config.contract, identity.account, deploy_block=config.from_block)
    ipfs_down = _wait_for_services(config, ledger, nlog, wait_for_services)
    waited = f" (waited {wait_for_services:g} s)" if wait_for_services > 0 else ""
    try:
        ledger.check()
    except LedgerError as exc:
        raise UserError(f"{exc}{waited}",
                        hint="check --contract / --rpc-url (is the devnet up? `fedledger devnet status`)") from exc
    if ipfs_down:
        raise UserError(f"cannot reach the IPFS API at {config.ipfs_api}{waited}",
                        hint="check --ipfs (is the IPFS node up? `fedledger devnet status`); "
                             "--wait-for-services SECONDS waits for it")
    blobstore = IpfsBlobStore(config.ipfs_api, retries=4, backoff=0.5)
    try:
        node = PeerNode(config, identity, ledger=ledger, blobstore=blobstore, task=task, nlog=nlog,
                        adversary=adversary, training_data=data)
    except StateError as exc:
        raise UserError(str(exc)) from exc
    gossip = None
    if config.gossip and start_gossip:
        from peer.net.admission import EnvelopeValidator
        from peer.net.equivocation_log import EquivocationRecorder
        from peer.net.gossip import GossipNode

        # The validator runs on the gossip thread: it reads the node's membership cache, never the chain.
        validator = EnvelopeValidator(federation=ledger.address, chain_id=ledger.chain_id,
                                      is_member=node.membership.is_member,
                                      current_round=node.membership.current_round)
        gossip = GossipNode(validator=validator, listen=config.listen, announce=config.announce,
                            bootstrap=config.bootstrap, seed=gossip_seed(config.state_dir),
                            spool_dir=str(config.state_dir / "blobs"))  # a killed run's spool goes at next start
        # a member's two contradicting signed envelopes are kept as slash evidence under <state>/evidence
        EquivocationRecorder(config.state_dir / "evidence").attach(gossip.store)
        node.gossip = gossip
    return node, gossip


def _wait_for_services(config, ledger, nlog, budget: float) -> bool:
    """Wait (one log line per attempt) while the chain or the IPFS node does not answer; True if IPFS still does not.

    A chain still down is reported by the caller's `ledger.check()`, with the same error as without waiting."""
    from peer.startup_wait import chain_service, ipfs_service, wait_for_services

    def say(event: str, line: str) -> None:
        nlog.event(None, "startup", event, level="warning" if event == "waiting" else "info", message=line)

    down = wait_for_services([chain_service(ledger), ipfs_service(config.ipfs_api)], budget=budget, say=say)
    return any(s.name == "IPFS" for s in down)


def _config_error(exc) -> UserError:
    """A config validation error as one line; a bad gossip address also gets the hint that fixes it."""
    from ledger_tools.config import format_validation_error
    from peer.net.gossip_addr import GossipAddressError

    address_errors = [e["ctx"]["error"] for e in exc.errors()
                      if isinstance(e.get("ctx", {}).get("error"), GossipAddressError)]
    if address_errors:
        return UserError(str(address_errors[0]), hint=address_errors[0].hint, exit_code=2)
    return UserError(f"invalid peer config: {format_validation_error(exc)}", exit_code=2,
                     hint="fix the value named above (in --config or its flag; `fedledger peer run --help`)")


class _GossipToNodeLog(logging.Handler):
    """The gossip node's warnings (and its records that carry an `event`) as lines of the peer's own log."""

    def __init__(self, nlog) -> None:
        super().__init__(logging.INFO)
        self.nlog = nlog

    def emit(self, record: logging.LogRecord) -> None:
        event = getattr(record, "event", None)
        if event is None and record.levelno < logging.WARNING:
            return
        level = "warning" if record.levelno >= logging.WARNING else "info"
        message = record.getMessage().removeprefix("gossip: ")
        self.nlog.event(None, "gossip", event or "warning", level=level, message=message,
                        peers=getattr(record, "peers", None))


def _gossip_log_to(nlog, verbose: bool) -> None:
    logger = logging.getLogger("fedledger.gossip")
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.addHandler(_GossipToNodeLog(nlog))
    logger.propagate = verbose  # else the same warning would also reach stderr in logging's raw format


#: gas limits the node sends with: a commit (~42k used, docs/gas.md; estimate x 1.25 + 20k, rounded up) and a
#: vote (at least `peer.loop.round_clock.vote_gas`, which covers a finalizing vote)
COMMIT_GAS_LIMIT = 100_000
FEE_MARGIN = 2  # web3's default max fee is 2 x base fee + tip; a node pays for the limit up front
EXIT_DISK = 74  # sysexits EX_IOERR: the state directory cannot be written (full, read-only, no permission)


def gas_money_needed(node) -> tuple[int, int]:
    """(balance, wei needed for the next commit + vote at the current gas price, with margin)."""
    from peer.loop.round_clock import vote_gas

    ctx = node.ctx
    w3 = ctx.ledger.w3
    needed = (COMMIT_GAS_LIMIT + vote_gas(ctx.params.f)) * int(w3.eth.gas_price) * FEE_MARGIN
    return int(w3.eth.get_balance(node.me)), needed


def wait_for_gas_money(node, stopping: threading.Event, poll: float = 2.0) -> None:
    """Say ONCE (address, balance, need) when the account cannot pay its next transactions; wait until it can.

    Without this, every commit fails with "insufficient funds" and is retried with no hint of whom to fund."""
    from web3.exceptions import Web3Exception

    warned = False
    while not stopping.is_set():
        try:
            balance, needed = gas_money_needed(node)
        except (OSError, Web3Exception):  # the round loop reports an unreachable chain itself
            return
        if balance >= needed:
            if warned:
                node.nlog.event(None, "funds", "ok", message=f"{node.me} now holds {_eth(balance)} ETH")
            return
        if not warned:
            node.nlog.event(None, "funds", "insufficient", level="warning",
                            message=f"{node.me} holds {_eth(balance)} ETH, its next commit + vote need about "
                                    f"{_eth(needed)} ETH at the current gas price: send it ETH (on the devnet: "
                                    f"`fedledger devnet fund {node.me}`); waiting for it")
            warned = True
        stopping.wait(poll)


def _eth(wei: int) -> str:
    return f"{wei / 10**18:.6g}"


def _watch_membership(node, config):
    """Follow admissions and removals between rounds: the gossip validator's member set is refreshed as soon as
    the ledger logs a change (`peer.net.membership.MembershipWatcher`), and the change is logged."""
    from peer.net.membership import MembershipWatcher

    def changed(added: list[str], removed: list[str]) -> None:
        parts = [f"+{a}" for a in added] + [f"-{r}" for r in removed]
        node.nlog.event(None, "membership", "changed", message=" ".join(parts) or "auditors changed")

    return MembershipWatcher(node.membership, node.ctx.ledger, interval=max(config.poll_interval, 1.0),
                             on_change=changed).start()


def _adversary(config):
    if not config.adversary.attack:
        return None
    from peer.byzantine.adversary import Adversary

    spec = config.adversary.attack
    if config.adversary.params:
        spec += ":" + ",".join(f"{k}={v}" for k, v in config.adversary.params.items())
    try:
        return Adversary.parse(spec, seed=config.adversary.seed)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


@app.command("run")
def run(
    config_file: Path | None = typer.Option(None, "--config", help="peer.toml (flags override its values)."),
    state_dir: Path | None = typer.Option(None, "--state-dir", help="The peer's state directory."),
    contract: str | None = typer.Option(None, "--contract", envvar="FEDLEDGER_CONTRACT",
                                        help="FederationLedger address."),
    rpc_url: str | None = typer.Option(None, "--rpc", "--rpc-url", envvar="FEDLEDGER_RPC",
                                       help="Ethereum JSON-RPC URL."),
    ipfs_api: str | None = typer.Option(None, "--ipfs", "--ipfs-api", envvar="FEDLEDGER_IPFS",
                                        help="IPFS (Kubo RPC) API URL or multiaddr."),
    from_block: int | None = typer.Option(None, "--from-block", help="The ledger's deploy block."),
    password_file: Path | None = typer.Option(None, "--password-file", help="Keystore password file."),
    name: str | None = typer.Option(None, "--name", help="Label in log lines."),
    listen: str | None = typer.Option(
        None, "--listen", help="Multiaddr the gossip (libp2p) host binds, e.g. /ip4/0.0.0.0/tcp/4001 "
                               "(default /ip4/127.0.0.1/tcp/0: loopback, any free port)."),
    announce: str | None = typer.Option(
        None, "--announce", help="Multiaddr the other peers dial, e.g. /ip4/192.0.2.10/tcp/4001; never 0.0.0.0. "
                                 "Default: the --listen address; required when --listen binds 0.0.0.0 "
                                 "(a wildcard --listen without it is refused, not guessed)."),
    bootstrap: list[str] | None = typer.Option(
        None, "--bootstrap", help="Gossip peer multiaddr (repeatable; optional: the members' addresses announced "
                                  "on the ledger are dialled too)."),
    no_gossip: bool = typer.Option(False, "--no-gossip", help="Use IPFS only (no libp2p)."),
    task: str | None = typer.Option(None, "--task", help="digits | breast_cancer | csv:PATH:LABEL."),
    partition: str | None = typer.Option(None, "--partition", help="full | iid | dirichlet | csv."),
    alpha: float | None = typer.Option(None, "--alpha", help="Dirichlet alpha (non-IID skew)."),
    num_partitions: int | None = typer.Option(None, "--num-partitions"),
    partition_index: int | None = typer.Option(None, "--partition-index"),
    seed: int | None = typer.Option(None, "--seed", help="Partition seed."),
    data: Path | None = typer.Option(None, "--data", help="CSV file (with --label): the institution's table."),
    label: str | None = typer.Option(None, "--label", help="Label column of --data."),
    algorithm: str | None = typer.Option(None, "--algorithm", help="fedavg | fedprox."),
    epochs: int | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    mu: float | None = typer.Option(None, "--mu", help="FedProx mu."),
    dp: bool | None = typer.Option(None, "--dp/--no-dp", help="DP-SGD (clipping + Gaussian noise)."),
    dp_clip: float | None = typer.Option(None, "--dp-clip"),
    dp_noise: float | None = typer.Option(None, "--dp-noise"),
    dp_delta: float | None = typer.Option(None, "--dp-delta"),
    attack: str | None = typer.Option(None, "--attack", help="Byzantine behaviour (experiments only), e.g. sign_flip."),
    max_rounds: int | None = typer.Option(None, "--max-rounds", help="Stop (exit 0) once round N is settled."),
    min_round_interval: float | None = typer.Option(
        None, "--min-round-interval", help="Seconds after a round opened (on chain) before this peer commits in it: "
                                           "paces the rounds (default 0: back to back)."),
    json_log: bool = typer.Option(False, "--json", help="One JSON object per line (for machines)."),
    threads: int = typer.Option(1, "--threads", help="torch CPU threads for local training."),
    verbose: bool = typer.Option(False, "--verbose", "-v"),
    wait_for_services: float = typer.Option(
        DEFAULT_WAIT, "--wait-for-services", min=0, metavar="SECONDS",
        help="At start-up, wait up to SECONDS for a chain or IPFS node that does not answer yet (retrying after "
             "1, 2, 4 … 30 s, one log line per attempt); 0 = fail at once."),
) -> None:
    """Run the round loop: train, seal, publish, commit, aggregate, vote — every round, until stopped.

    Needs the keystore password chosen at `peer init` (--password-file, $FEDLEDGER_PASSWORD, or a prompt),
    and ETH for gas (on the devnet: `fedledger devnet fund ADDRESS`).
    """
    from pydantic import ValidationError

    from peer.config import PeerConfig
    from peer.loop.node import ModelSpecMismatch, NodeError
    from peer.loop.state import DiskError, StateError

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    if not verbose:  # dial failures to peers that are not up yet are expected; the node logs what matters
        logging.getLogger("libp2p").setLevel(logging.CRITICAL)
    overrides: dict[str, Any] = {
        "state_dir": state_dir, "contract": contract, "rpc_url": rpc_url, "ipfs_api": ipfs_api,
        "from_block": from_block, "password_file": password_file, "name": name, "listen": listen,
        "announce": announce,
        "bootstrap": bootstrap or None, "gossip": False if no_gossip else None, "task": task,
        "max_rounds": max_rounds, "min_round_interval": min_round_interval,
        "data": {"partition": "csv" if data is not None and partition is None else partition, "alpha": alpha,
                 "num_partitions": num_partitions, "partition_index": partition_index, "seed": seed,
                 "csv_path": data, "label": label},
        "training": {"algorithm": algorithm, "local_epochs": epochs, "batch_size": batch_size, "lr": lr, "mu": mu},
        "privacy": {"enabled": dp, "clip_norm": dp_clip, "noise_multiplier": dp_noise, "delta": dp_delta},
        "adversary": {"attack": attack},
    }
    if data is not None and task is None:
        overrides["task"] = f"csv:{data}:{label}"
    try:
        if config_file is not None:
            config = PeerConfig.from_toml(config_file, **overrides)
        else:
            from peer.config import _merge

            config = PeerConfig.model_validate(_merge({}, overrides))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise config_file_error(config_file, exc) from exc
    except ValidationError as exc:
        raise _config_error(exc) from exc

    password = read_password(config.password_file, confirm=False)
    import torch

    torch.set_num_threads(max(1, threads))  # several peers often share a machine's cores
    node, gossip = build_node(config, password, json_log=json_log, wait_for_services=wait_for_services)

    stopping = threading.Event()

    def _terminate(signum, frame):  # finish the current step, persist, exit cleanly
        stopping.set()
        node.stop()

    signal.signal(signal.SIGTERM, _terminate)
    watcher = None
    try:
        with service_errors(config.rpc_url, contract=config.contract):  # e.g. --contract of another contract
            node.check_startup()  # also fills the membership cache the gossip validator reads
        watcher = _watch_membership(node, config)
        wait_for_gas_money(node, stopping)
        if gossip is not None:
            _gossip_log_to(node.nlog, verbose)
            try:
                addr = gossip.start()
                node.nlog.event(None, "gossip", "listening", message=f"{addr} (bound {gossip.listen})",
                                peers=gossip.peer_count)
            except Exception as exc:  # noqa: BLE001 - any gossip start failure: run on IPFS alone, say so
                node.gossip = None
                node.nlog.event(None, "gossip", "disabled", level="warning", message=f"{exc}; IPFS only")
            else:
                node.announce_gossip(addr)  # on the ledger, for the members to dial; and dial theirs
        node.run()
    except ModelSpecMismatch as exc:
        raise UserError(str(exc), hint="use the federation's --task", exit_code=2) from exc
    except DiskError as exc:
        raise UserError(f"{exc}; the peer stopped (its state on disk is intact)",
                        hint="free space (or fix the mount / permissions) under the state directory, "
                             "then start the peer again", exit_code=EXIT_DISK) from exc
    except (NodeError, StateError) as exc:
        raise UserError(str(exc)) from exc
    finally:
        if watcher is not None:
            watcher.stop()
        if gossip is not None:
            try:
                gossip.stop(timeout=5)
            except Exception:  # noqa: BLE001 - best-effort stop on the way out; state is already persisted
                pass
    # Everything is persisted; don't let a lingering library thread (libp2p) keep the process alive.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
