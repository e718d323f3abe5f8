"""The peer node: the protocol's round as a small, restartable state machine.

One `PeerNode` = one member institution. For every round r it: waits for r to open → fetches the global model
M(r-1) (`peer.loop.model_store`) → trains, seals, publishes and commits its update (`peer.loop.commit_step`) → waits for
the commit phase to end → collects, aggregates and votes (`peer.loop.vote_step`) → awaits finalization, or closes
the round as failed (`peer.loop.settle`). The chain is reached only through the typed binding
`ledger_tools.chain.FederationLedger`.

Restart safety: after every step the phase and what was sent are persisted (`peer.loop.state`), and before a commit
or a vote the chain itself is asked whether this member already did it, so a peer killed at any point never
double-commits, never double-votes and never publishes two different updates for one round. A peer that was
down catches up at the chain's current round; a round whose commit window it missed is still voted on (it is a
member), just without its own update.

Reconciliation (`peer.loop.reconcile`): the state file is checked against the chain when the node starts and
before any step is skipped as done, and the node's own commit and vote are re-checked while it waits for the
next phase. A transaction counts only `confirmations` blocks deep; one that vanished (reorg, chain restarted
from an older state) is re-sent while the round still accepts it — the same update for a commit.

Discovery and pacing: the node publishes its gossip multiaddr on the ledger (`announce_gossip`) and, with every
round's membership refresh, hands the members' announced addresses to its gossip node (`peer.net.discovery`).
With `min_round_interval` it commits in round r no earlier than that many seconds after r opened (the round's
start on chain); with `max_rounds` it returns once round `max_rounds` has settled.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from ledger_tools.blob_caps import model_blob_cap
from ledger_tools.chain import FederationLedger, LedgerError
from peer.config import PeerConfig
from peer.crypto.identity import PeerIdentity
from peer.errors import PeerError
from peer.learning.local_data import load_training_data
from peer.learning.tasks import TaskData
from peer.loop import commit_step, publisher, reconcile, settle, vote_step
from peer.loop.context import NodeContext
from peer.loop.log import NodeLog, Timer, round_
from peer.loop.model_store import ModelStore
from peer.loop.retry import Retrier, Stopped
from peer.loop.state import DiskError, PeerState, Phase, RoundRecord
from peer.net.discovery import LedgerDiscovery
from peer.net.gossip_key import gossip_peer_id, gossip_seed  # noqa: F401  (re-exported: fedledger.bootstrap)
from peer.net.membership import MembershipCache

log = logging.getLogger("fedledger.node")

__all__ = ["ModelSpecMismatch", "NodeError", "NodeLog", "PeerNode", "Stopped", "gossip_peer_id", "gossip_seed"]


class NodeError(PeerError):
    """The node cannot run (wrong model spec, not a member, unusable state directory)."""


class ModelSpecMismatch(NodeError):
    """This peer's task builds a different model than the federation's on-chain model spec."""


class PeerNode:
    """A member's node over one `FederationLedger` (signing as the member), a blob store and optional gossip."""

    def __init__(
        self,
        config: PeerConfig,
        identity: PeerIdentity,
        *,
        ledger: FederationLedger,
        blobstore,
        gossip=None,
        task=None,
        nlog: NodeLog | None = None,
        adversary=None,
        training_data: TaskData | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        """`training_data`: this institution's (already loaded) data; default: loaded from `config.data` on
        first use, poisoned by `adversary` if it flips labels."""
        from peer.learning.tasks import get_task

        self._stop = False
        self._started = False
        self._reconciled = False
        self.discovery: LedgerDiscovery | None = None
        self._data = training_data
        nlog = nlog or NodeLog(identity.address, config.name)
        retry = Retrier(nlog, sleep=sleep, should_stop=lambda: self._stop)
        state = PeerState(config.state_dir, federation=ledger.address, address=identity.address)
        task = task or get_task(config.task)
        self.ctx = NodeContext(
            cfg=config, identity=identity, ledger=ledger, blobstore=blobstore, task=task,
            state=state, nlog=nlog, retry=retry, membership=MembershipCache(),
            models=ModelStore(state.dir / "models", ledger=ledger, blobstore=blobstore, retry=retry, nlog=nlog,
                              max_bytes=model_blob_cap(task.model_spec())),
            training_data=self.training_data, gossip=gossip, adversary=adversary, sleep=sleep,
        )

    # --- collaborators, for the CLI wiring and tests
    @property
    def me(self) -> str:
        return self.ctx.me

    @property
    def nlog(self) -> NodeLog:
        return self.ctx.nlog

    @property
    def state(self) -> PeerState:
        return self.ctx.state

    @property
    def membership(self) -> MembershipCache:
        return self.ctx.membership

    @property
    def gossip(self):
        return self.ctx.gossip

    @gossip.setter
    def gossip(self, node) -> None:
        self.ctx.gossip = node

    def stop(self) -> None:
        """Finish the current step, persist, return from `run` (SIGTERM handler)."""
        self._stop = True

    def _stopping(self) -> bool:
        return self._stop

    def training_data(self) -> TaskData:
        if self._data is None:
            self._data = load_training_data(self.ctx.cfg.data, self.ctx.task, self.ctx.adversary)
        return self._data

    # --- start-up
    def check_startup(self) -> None:
        """Refuse to run with a mismatching model spec, or as a non-member; fill the gossip validator's cache."""
        ctx = self.ctx
        if self._started:
            return
        p = ctx.params
        local = ctx.task.model_spec().spec_hash()
        if local != p.model_spec_hash:
            raise ModelSpecMismatch(
                f"task {ctx.task.task_id!r} builds model spec 0x{local.hex()}, but the federation at "
                f"{ctx.ledger.address} requires 0x{p.model_spec_hash.hex()}; run the federation's task/architecture"
            )
        current = ctx.retry("read current round", ctx.ledger.current_round)
        ctx.membership.set_round(current)
        ctx.retry("read members", lambda: ctx.membership.refresh(ctx.ledger, current))
        key = ctx.membership.members.get(self.me)
        if key is None:
            raise NodeError(f"{self.me} is not a member of the federation at {ctx.ledger.address}")
        if key != ctx.identity.enc_public_key:
            raise NodeError(f"the X25519 key registered for {self.me} differs from this identity's; wrong state dir?")
        if ctx.cfg.min_round_interval > 0 and ctx.cfg.min_round_interval + ctx.cfg.commit_margin >= p.commit_period:
            raise NodeError(f"min_round_interval {ctx.cfg.min_round_interval:g} s (+ commit margin "
                            f"{ctx.cfg.commit_margin:g} s) leaves no time to commit in the federation's "
                            f"{p.commit_period} s commit period; use a smaller min_round_interval")
        self._started = True

    def announce_gossip(self, own_multiaddr: str) -> None:
        """Publish this node's gossip multiaddr on the ledger (one transaction, only if it changed since the
        last announcement) and dial the members announced there. A failure is a warning: gossip still works
        through the bootstrap peers, and updates through IPFS."""
        ctx = self.ctx
        self.discovery = LedgerDiscovery(ctx.ledger, self.me, own_peer_id=own_multiaddr.rsplit("/p2p/", 1)[-1])
        try:
            sent = ctx.retry("announce tx", lambda: self.discovery.publish(own_multiaddr))
        except Stopped:
            return
        except LedgerError as exc:
            ctx.nlog.event(None, "announce", "failed", level="warning",
                           message=f"{own_multiaddr} not announced on the ledger: {exc}")
        else:
            ctx.nlog.event(None, "announce", "sent" if sent else "unchanged", message=own_multiaddr)
        try:
            self.dial_members(None)
        except Stopped:
            return

    def dial_members(self, r: int | None) -> None:
        """Hand the current members' announced gossip addresses to the gossip node (which dials them in the
        background). Reads the chain here, on the round loop's thread, never on the gossip thread."""
        ctx = self.ctx
        if self.discovery is None or ctx.gossip is None:
            return
        try:
            addresses = ctx.retry("read announcements", lambda: self.discovery.peers(ctx.membership.members),
                                  round=r)
            ctx.gossip.dial_discovered(addresses)
        except Stopped:
            raise
        except (LedgerError, PeerError) as exc:  # PeerError: the gossip node stopped
            ctx.nlog.event(r, "gossip", "discovery-failed", level="warning", message=str(exc))

    # --- the loop
    def run(self) -> dict[int, RoundRecord]:
        """Run rounds until `max_rounds` is settled (or until stopped); returns this node's round records."""
        ctx = self.ctx
        t = Timer()
        self.check_startup()
        publisher.resume(ctx.publisher, ctx)  # adds a killed run left unfinished
        p = ctx.params
        attack = f" attack={ctx.cfg.adversary.attack}" if ctx.cfg.adversary.attack else ""
        ctx.nlog.event(None, "start", "ready", elapsed=t.elapsed,
                       message=f"federation {ctx.ledger.address} rule={p.rule} f={p.f} task={ctx.task.task_id} "
                               f"samples={len(self.training_data())}{attack}")
        failures = 0
        why = "stopped"
        while not self._stop:
            r = ctx.retry("read current round", ctx.ledger.current_round)
            ctx.membership.set_round(r)
            if ctx.cfg.max_rounds is not None and r > ctx.cfg.max_rounds:
                why = f"max_rounds reached: round {ctx.cfg.max_rounds} settled"
                break
            try:
                self.run_round(r)
                failures = 0
            except Stopped:
                break
            except (NodeError, DiskError, KeyboardInterrupt):
                raise  # a disk that cannot be written stops the node: rounds it cannot record are not retried
            except Exception as exc:  # one bad round must not kill the node: the chain is re-read on resume
                failures += 1
                delay = min(2.0 ** failures, 20.0)
                log.debug("round %d failed", r, exc_info=True)
                ctx.nlog.event(r, "error", "retry", level="error",
                               message=f"{type(exc).__name__}: {exc}; resuming round in {delay:.0f}s")
                ctx.sleep(delay)
        ctx.publisher.close(timeout=30.0)  # the last adds (this round's model) land before the node exits
        finalized = sum(1 for x in ctx.state if x.phase is Phase.FINALIZED)
        ctx.nlog.event(None, "stop", "done", elapsed=t.elapsed, message=f"{why}; {finalized} rounds finalized")
        return dict(ctx.state.rounds)

    def reconcile_state(self) -> None:
        """The state file against the chain (once, before the first round): what it claims and the chain does not
        hold is taken back out of it (`peer.loop.reconcile.on_load`)."""
        if not self._reconciled:
            reconcile.on_load(self.ctx)
            self._reconciled = True

    def run_round(self, r: int) -> None:
        ctx = self.ctx
        self.reconcile_state()
        rec = ctx.state.record(r)
        if rec.phase.settled and reconcile.settled(ctx, r, rec):
            settle.wait_round_closed(ctx, r, self._stopping)
            return
        if rec.phase is Phase.NEW:
            self._note_missed(r)
            ctx.state.save()
        ctx.retry("read members", lambda: ctx.membership.refresh(ctx.ledger, r), round=r)
        self.dial_members(r)
        round_timer = Timer()
        model, model_hash = ctx.models.current(r)
        watch = reconcile.Watch(ctx, r, rec)
        while True:  # again from the first step the chain does not hold, when a transaction of ours vanished
            reconcile.after_rollback(ctx, r)  # the chain lost blocks: recent records, settled ones too, re-checked
            settle.settle_earlier(ctx, r)
            reconcile.round_(ctx, r, rec)  # never skip a step on the state file's word alone
            if rec.phase.order < Phase.COMMITTED.order:
                settle.wait_round_interval(ctx, r, self._stopping)
                commit_step.commit_own_update(ctx, r, rec, model, model_hash)
            if not settle.wait_commit_phase_end(ctx, r, self._stopping, watch):
                continue
            if rec.phase.order < Phase.VOTED.order:
                vote_step.vote_on_round(ctx, r, rec, model)
            if settle.await_settled(ctx, r, rec, self._stopping, watch):
                break
        ctx.nlog.event(r, "round", rec.phase.value, elapsed=round_timer.elapsed, accuracy=rec.accuracy,
                       timings={k: round_(v, 3) for k, v in rec.timings.items()},
                       peers=None if ctx.gossip is None else ctx.gossip.peer_count)
        if ctx.gossip is not None:
            try:
                ctx.gossip.forget_rounds_before(r)
            except Exception:  # noqa: BLE001 - housekeeping only
                pass

    def _note_missed(self, r: int) -> None:
        known = [x.round for x in self.ctx.state]
        if known and max(known) < r - 1:
            self.ctx.nlog.event(r, "catchup", "skipped", level="warning",
                                message=f"rounds {max(known) + 1}..{r - 1} settled while this node was away")
