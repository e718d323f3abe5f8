"""Waiting steps of the round loop: for the commit phase to end, for the round to settle (finalized, or
closed as failed by anyone after the vote deadline), and for rounds this node left unsettled earlier.

While they wait, a `watch` (`peer.loop.reconcile.Watch`) asks the chain whether this peer's commit and vote
still hold; when one vanished the wait returns False and the loop runs the round's steps again."""
from __future__ import annotations

from collections.abc import Callable

from ledger_tools.chain import Finalization, RoundNotOpen, VoteDeadlineNotReached, VotingClosed
from ledger_tools.chain import Phase as ChainPhase
from peer.errors import PeerError
from peer.loop.context import NodeContext
from peer.loop.log import Timer
from peer.loop.retry import Stopped
from peer.loop.round_clock import CLOSE_GAS, send_time_dependent
from peer.loop.state import Phase, RoundRecord


class RoundNotOpened(PeerError):
    """The loop was asked about a round the chain has not opened (a bug, or a different chain)."""


Watch = Callable[..., bool]   # watch(force=False) -> True when the round's record was rewound


def _unwatched(force: bool = False) -> bool:
    return False


def wait_commit_phase_end(ctx: NodeContext, r: int, should_stop, watch: Watch = _unwatched) -> bool:
    """Until round r's commit phase ends; False (at once) if `watch` rewound the record."""
    t = Timer()
    announced = False
    while not should_stop() and ctx.round_phase(r) == ChainPhase.COMMIT:
        if watch():
            return False
        if not announced:
            ctx.nlog.event(r, "wait", "commits", message="waiting for the commit phase to end")
            announced = True
        ctx.sleep(ctx.cfg.poll_interval)
    if announced:
        ctx.nlog.event(r, "wait", "done", elapsed=t.elapsed)
    return True


def await_settled(ctx: NodeContext, r: int, rec: RoundRecord, should_stop, watch: Watch = _unwatched) -> bool:
    """Until round r is finalized or failed (True); closes it as failed once its vote deadline has passed.
    False if `watch` rewound the record: a transaction of this peer vanished and a step must run again. A
    finalization is recorded only after this peer's own transactions were checked against the chain."""
    t = Timer()
    while not should_stop():
        phase = ctx.round_phase(r)
        if phase == ChainPhase.FINALIZED:
            if watch(force=True):
                return False
            _record_finalized(ctx, r, rec, t)
            return True
        if phase == ChainPhase.FAILED:
            ctx.state.advance(rec, Phase.FAILED)
            ctx.nlog.event(r, "failed", "done", level="warning", elapsed=t.elapsed,
                           message="round closed without a majority; the model stays")
            return True
        if phase == ChainPhase.EXPIRED:
            close_failed_round(ctx, r, rec)
            continue
        if phase == ChainPhase.NONE:
            raise RoundNotOpened(f"round {r} is not open on chain")
        if watch():
            return False
        ctx.sleep(ctx.cfg.poll_interval)
    return True


def _record_finalized(ctx: NodeContext, r: int, rec: RoundRecord, t: Timer) -> None:
    fin = ctx.retry("read finalization", lambda: ctx.ledger.finalization(r), round=r)
    accuracy = None
    if fin is not None:
        try:
            model, _ = ctx.models.current(r + 1)
            accuracy = evaluate(ctx, model)
        except Stopped:
            raise
        except Exception as exc:  # noqa: BLE001 - the accuracy is informative; the round is settled either way
            ctx.nlog.event(r, "model", "unavailable", level="warning", message=str(exc))
    agreed = fin is not None and rec.digest is not None and fin.digest.hex() == rec.digest
    ctx.state.advance(rec, Phase.FINALIZED, accuracy=accuracy, **chain_outcome(rec, fin))
    ctx.nlog.event(r, "finalized", "done", elapsed=t.elapsed, accuracy=accuracy,
                   agreed=agreed if rec.digest else None,
                   excluded=list(fin.excluded) if fin is not None and fin.excluded else None)


def chain_outcome(rec: RoundRecord, fin: Finalization | None) -> dict:
    """The fields a finalized record takes from the chain's finalization: its digest, aggregate and excluded set,
    never this peer's own claim. A digest of ours that differs is kept in a note (for the operator)."""
    if fin is None:
        return {}
    fields = {"digest": fin.digest.hex(), "aggregate_hash": fin.aggregate_hash.hex(),
              "aggregate_cid": fin.aggregate_cid, "rewards_cid": fin.rewards_cid, "excluded": list(fin.excluded)}
    if rec.digest is not None and rec.digest != fin.digest.hex():
        fields["notes"] = rec.notes + [f"own digest 0x{rec.digest} differs from the chain's finalized digest"]
    return fields


def close_failed_round(ctx: NodeContext, r: int, rec: RoundRecord) -> None:
    try:
        receipt = ctx.retry("closeFailedRound tx", lambda: send_time_dependent(
            lambda gas: ctx.ledger.close_failed_round(r, gas=gas), CLOSE_GAS), round=r)
    except Stopped:
        raise
    except VoteDeadlineNotReached:
        ctx.sleep(1.0)  # the chain's clock lags ours
        return
    except (RoundNotOpen, VotingClosed):
        return  # someone else closed or finalized it first
    ctx.state.update(rec, close_tx=receipt.tx_hash)
    ctx.nlog.event(r, "close", "mined", gas=receipt.gas_used, tx=receipt.tx_hash)


def evaluate(ctx: NodeContext, model: bytes) -> float | None:
    """Accuracy of `model` on the task's test split (informative only; None when disabled or failing)."""
    if not ctx.cfg.evaluate:
        return None
    import consensus

    try:
        return float(ctx.task.evaluate(consensus.decode(model)).accuracy)
    except Exception as exc:  # noqa: BLE001 - evaluation is informative only
        ctx.nlog.event(None, "evaluate", "failed", level="warning", message=str(exc))
        return None


def settle_earlier(ctx: NodeContext, r: int) -> None:
    """Rounds this node left before they settled (crash, error): record how they ended. A finalized round this
    node has not voted in yet gets its late vote first while the round's vote deadline has not passed (before
    the node commits in round r), so a restart does not cost the member reputation."""
    for rec in list(ctx.state):
        if rec.round >= r or rec.phase.settled:
            continue
        phase = ctx.round_phase(rec.round)
        if phase == ChainPhase.FINALIZED and rec.phase.order < Phase.VOTED.order:
            _late_vote(ctx, rec)
        if phase in (ChainPhase.FINALIZED, ChainPhase.FAILED):
            finalized = phase == ChainPhase.FINALIZED
            fin = ctx.retry("read finalization", lambda k=rec.round: ctx.ledger.finalization(k),
                            round=rec.round) if finalized else None
            ctx.state.advance(rec, Phase.FINALIZED if finalized else Phase.FAILED, **chain_outcome(rec, fin))
            ctx.nlog.event(rec.round, "finalized" if finalized else "failed", "recorded",
                           message="settled while this node was busy or away")


def _late_vote(ctx: NodeContext, rec: RoundRecord) -> None:
    """Vote on the finalized round `rec.round` if its vote deadline has not passed and the model this node
    started the round from, M(r-1), is still in its cache (it is what the outcome is computed from)."""
    from peer.loop import vote_step

    model = ctx.models.cached(bytes.fromhex(rec.model_hash)) if rec.model_hash else None
    if model is None or not vote_step.late_vote_open(ctx, rec.round):
        return
    try:
        vote_step.vote_on_round(ctx, rec.round, rec, model)
    except Stopped:
        raise
    except Exception as exc:  # noqa: BLE001 - the round is settled either way; a late vote only spares reputation
        ctx.nlog.event(rec.round, "vote", "late-failed", level="warning", message=f"{type(exc).__name__}: {exc}")


def wait_round_closed(ctx: NodeContext, r: int, should_stop) -> None:
    while not should_stop():
        current = ctx.retry("read current round", ctx.ledger.current_round)
        ctx.membership.set_round(current)
        if current > r:
            return
        ctx.sleep(ctx.cfg.poll_interval)


def wait_round_interval(ctx: NodeContext, r: int, should_stop) -> None:
    """Pacing: no commit in round r before the round's opening on chain (its start, a block timestamp) plus
    `min_round_interval` seconds, so rounds do not run back to back faster than the federation wants."""
    interval = ctx.cfg.min_round_interval
    if interval <= 0:
        return
    info = ctx.retry("read round info", lambda: ctx.ledger.round_info(r), round=r)
    not_before = info.start + interval
    if ctx.clock() >= not_before:
        return
    t = Timer()
    ctx.nlog.event(r, "wait", "pacing", message=f"min_round_interval {interval:g} s: committing no earlier than "
                                                f"{not_before - ctx.clock():.1f} s from now")
    while ctx.clock() < not_before:
        if should_stop():
            raise Stopped()
        ctx.sleep(min(ctx.cfg.poll_interval, max(not_before - ctx.clock(), 0.01)))
    ctx.nlog.event(r, "wait", "done", elapsed=t.elapsed)
