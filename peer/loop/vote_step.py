"""Steps 6-8 of round r, after the commit phase: collect every committed update, compute the round outcome,
publish the new model and the reward tree on IPFS, vote.

The chain is asked whether this member already voted (`peer.loop.reconcile.vote`) before anything else and
again right before the vote transaction, so a restarted peer never double-votes (the contract would also
refuse: AlreadyVoted). The vote counts as done (phase VOTED) only `confirmations` blocks deep.

A round the others finalized before this peer's vote is still voted on until the round's vote deadline: the
contract records such a *late vote* without counting it, and settles this member's reputation by it, so an
honest peer that is merely slower than the majority keeps its weight.
"""
from __future__ import annotations

from collections.abc import Callable

from consensus.round_outcome import CommittedUpdate, RoundNotAggregatable, RoundOutcome, compute_round_outcome
from ledger_tools.blob_caps import sealed_update_cap
from ledger_tools.chain import (
    AlreadySettled,
    AlreadyVoted,
    RoundInfo,
    RoundNotOpen,
    RoundStatus,
    VoteDeadlineNotReached,
    VoteOutOfOrder,
    VoteReceipt,
    VotingClosed,
    VotingNotOpen,
    signed_tx,
)
from ledger_tools.chain import Phase as ChainPhase
from peer.byzantine import attack_hooks
from peer.errors import PeerError
from peer.loop import commitments_ahead, reconcile, unseal_ahead
from peer.loop.collect import collect_updates
from peer.loop.context import NodeContext
from peer.loop.log import Timer
from peer.loop.reconcile import OnChain
from peer.loop.retry import ReachableBlobStore, Stopped
from peer.loop.round_clock import judge_phase, send_time_dependent, vote_gas
from peer.loop.state import Phase, RoundRecord
from peer.net.equivocation_log import save_mismatch_evidence

TOO_EARLY_RETRIES = 30   # seconds the chain's clock may lag ours before we give the vote up
RECIPIENT_SLACK = 8      # recipients a sealed update may have beyond this node's view of the membership


class VoteNeverAccepted(PeerError):
    """The chain kept refusing the vote as too early (its clock is far behind ours)."""


def late_vote_open(ctx: NodeContext, r: int) -> bool:
    """Round r is finalized but its vote deadline has not passed: a (late) vote still counts for reputation."""
    info = ctx.retry("read round info", lambda: ctx.ledger.round_info(r), round=r)
    return info.status == RoundStatus.FINALIZED and ctx.clock() < info.vote_deadline


def reward_pool(ctx: NodeContext, r: int) -> int:
    """The pool round r's reward tree splits: fixed on chain when r opened (`RoundOpened`), the same for an
    on-time and a late vote, so no transfer to the contract between two members' votes changes the digest."""
    return ctx.retry("read reward pool", lambda: ctx.ledger.round_pool(r), round=r)


def vote_on_round(ctx: NodeContext, r: int, rec: RoundRecord, model: bytes) -> None:
    known = rec.vote_tx is not None
    on_chain = reconcile.vote(ctx, r, rec)
    if on_chain is not OnChain.MISSING:
        if not known:
            ctx.nlog.event(r, "vote", "recovered", message=f"vote already on chain ({on_chain.value})")
        return
    if attack_hooks.is_silent(ctx):
        ctx.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + ["silent (attack)"])
        return
    info, phase = wait_commit_phase_again(ctx, r)
    if phase == ChainPhase.FINALIZED and late_vote_open(ctx, r):
        ctx.nlog.event(r, "vote", "late", message="round finalized by the others' votes; sending a late vote")
    elif phase != ChainPhase.VOTE:
        why = f"vote window not open (phase {phase.name.lower()})"
        ctx.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + [why], verdict_start=info.start)
        ctx.nlog.event(r, "vote", "skipped", level="warning", message=why)
        return
    updates = collect(ctx, r, rec)
    outcome = aggregate(ctx, r, rec, model, updates)
    if outcome is None:
        return
    send_vote(ctx, r, rec, outcome)


def wait_commit_phase_again(ctx: NodeContext, r: int) -> tuple[RoundInfo, ChainPhase]:
    """Round r's info and phase once it is past its commit phase. The loop only gets here after the commit phase
    ended, but the chain can show it running again (a ledger from before the round's member count was fixed at
    open, where an admission re-opened it; blocks rolled back): then wait for its end again, as the loop's
    commit-phase wait does, instead of abstaining from a round that will still take votes (`Stopped` ends it)."""
    info = ctx.round_info(r)
    phase = judge_phase(info, info.member_count, ctx.clock())
    if phase == ChainPhase.COMMIT:
        ctx.nlog.event(r, "vote", "wait", message="commit phase running again; waiting for its end")
    while phase == ChainPhase.COMMIT:
        ctx.sleep(ctx.cfg.poll_interval)
        info = ctx.round_info(r)  # raises Stopped once the node is asked to stop
        phase = judge_phase(info, info.member_count, ctx.clock())
    return info, phase


def update_blob_cap(ctx: NodeContext) -> int:
    """The largest sealed update an honest member can publish: a canonical update of the federation's model
    spec sealed for every current recipient, plus `RECIPIENT_SLACK` (a member admitted after this node's
    membership refresh may be among the sender's recipients). Derived from the spec, so a committed CID naming
    a larger blob is refused by the store before it is read past this size (`blob-too-large`)."""
    return sealed_update_cap(ctx.task.model_spec(), recipients=len(ctx.membership.recipients()) + RECIPIENT_SLACK)


def collect(ctx: NodeContext, r: int, rec: RoundRecord) -> list[CommittedUpdate]:
    """Every committed update in canonical order (gossip first, IPFS fallback); `None` for unusable ones."""
    t = Timer()
    watch = commitments_ahead.take_running(ctx, r)  # read while the updates were exchanged
    try:
        commitments = watch.complete() if watch is not None else None
    finally:
        if watch is not None:
            watch.close()
    read_ahead = commitments is not None
    if commitments is None:
        commitments = ctx.retry("read commitments", lambda: ctx.ledger.commitments(r), round=r)
    own = ctx.state.read_artefact(r, "update.bin")
    ahead = unseal_ahead.take_running(ctx, r)  # blobs unsealed as they arrived since the own commit
    try:
        updates, report = collect_updates(
            r, commitments, unseal=ctx.unseal, blobstore=ReachableBlobStore(ctx.blobstore, ctx.retry, round=r),
            gossip=ctx.gossip,
            local={ctx.me: own} if own is not None else None, gossip_wait=ctx.cfg.gossip_wait,
            max_blob_bytes=update_blob_cap(ctx), unsealed=None if ahead is None else ahead.take,
        )
    finally:
        if ahead is not None:
            ahead.close()
    rec.timings["collect"] = t.elapsed
    ctx.nlog.event(r, "collect", "done", elapsed=t.elapsed,
                   message=f"{len(commitments)} commitments{' (read ahead)' if read_ahead else ''}: "
                           f"{report.from_gossip} gossip, {report.from_ipfs} ipfs, {len(report.rejected)} invalid",
                   rejected={k[:10]: v[:80] for k, v in report.rejected.items()} or None)
    if report.equivocations:
        ctx.nlog.event(r, "collect", "equivocation", level="warning",
                       message="gossiped update differs from the committed one; the commitment counts",
                       equivocators=sorted(report.equivocations))
        tx_of = {c.member: c.tx_hash for c in commitments}
        save_mismatch_evidence(ctx.cfg.state_dir / "evidence", report.mismatched,
                               {c.member: c.update_hash for c in commitments},
                               lambda member: signed_tx.fetch(ctx.ledger.w3, tx_of[member]))
    ctx.state.advance(rec, Phase.COLLECTED, equivocations=dict(report.equivocations))
    return updates


def aggregate(ctx: NodeContext, r: int, rec: RoundRecord, model: bytes,
              updates: list[CommittedUpdate]) -> RoundOutcome | None:
    """The round's outcome by the federation's rule, f and codec scale; None (abstain) if not aggregatable."""
    # the parameters of round r, not the open round's: a proposal may change rule and f from one round to the next
    p = ctx.retry("read parameters", lambda: ctx.ledger.params_for_round(r), round=r)
    t = Timer()
    try:
        outcome = compute_round_outcome(
            round=r, previous_model=model, updates=updates, rule=p.rule, rule_param=p.rule_param, f=p.f,
            reward_pool=reward_pool(ctx, r),
            sample_cap=p.sample_cap, scale_bits=p.scale_bits,
        )
    except RoundNotAggregatable as exc:
        ctx.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + [str(exc)])
        ctx.nlog.event(r, "aggregate", "abstain", level="warning", elapsed=t.elapsed, message=str(exc))
        return None
    rec.timings["aggregate"] = t.elapsed
    ctx.models.cache(outcome.new_model)
    ctx.nlog.event(r, "aggregate", "done", elapsed=t.elapsed, rule=p.rule, excluded=list(outcome.excluded) or None,
                   digest="0x" + outcome.digest.hex())
    return outcome


def vote_tx(ledger, r: int, aggregate_hash: bytes, model_cid: str, rewards_root: bytes, rewards_cid: str,
            excluded: list[str], digest: bytes) -> Callable[[int | None], VoteReceipt]:
    """`send(gas)` for `send_time_dependent`: the vote transaction, always with a gas limit that covers a
    finalizing vote. Whether this vote finalizes the round depends on the votes mined before it, not on the
    state the estimate ran against — when peers vote at the same moment (as they do when the chain comes
    back after an outage) a vote estimated as non-finalizing lands as the finalizing one and would run out
    of gas. So: estimate first (a vote that would revert costs nothing) but send at least `vote_gas`; with
    a fixed `gas` (stale-clock fallback) send at least that much too."""
    limit = vote_gas(len(excluded))

    def send(gas: int | None) -> VoteReceipt:
        if gas is None:
            return ledger.vote(r, aggregate_hash, model_cid, rewards_root, rewards_cid, excluded, digest=digest,
                               min_gas=limit)
        return ledger.vote(r, aggregate_hash, model_cid, rewards_root, rewards_cid, excluded, digest=digest,
                           gas=max(gas, limit))

    return send


def send_vote(ctx: NodeContext, r: int, rec: RoundRecord, outcome: RoundOutcome) -> None:
    """Vote with the CIDs of M(r) and the reward tree, computed locally; their IPFS adds are queued once the vote
    is out (`peer.loop.publisher`, in the background).

    Queued before the vote, the adds ran beside the vote transaction on the same cores (the IPFS node hashing and
    storing the model) and slowed it; nobody needs them before the vote: members compute M(r) themselves, and
    auditors and late joiners read it after the round. The tree is kept as `rounds/<r>/rewards.json` and the CIDs
    are in the round's state before the vote, so a peer killed between its vote and the adds re-adds both on
    restart (`publisher.resume`)."""
    from peer.loop.publisher import cids_while

    t = Timer()
    tree_json = outcome.reward_tree.to_json()
    tree_bytes = tree_json.encode() if isinstance(tree_json, str) else bytes(tree_json)
    model_cid, rewards_cid = cids_while(lambda: ctx.state.write_artefact(r, "rewards.json", tree_bytes),
                                        outcome.new_model, tree_bytes)
    rec.timings["ipfs_results"] = t.elapsed
    try:
        _vote(ctx, r, rec, outcome, model_cid, rewards_cid)
    finally:
        ctx.publisher.release(r)  # the own sealed update's add, if still held (`peer.loop.publisher`)
        ctx.publisher.submit(r, "model", outcome.new_model, model_cid)
        ctx.publisher.submit(r, "rewards", tree_bytes, rewards_cid)


def _vote(ctx: NodeContext, r: int, rec: RoundRecord, outcome: RoundOutcome, model_cid: str,
          rewards_cid: str) -> None:
    """The vote transaction for `outcome` (unless the chain already holds this member's vote), state advanced."""
    import consensus

    aggregate_hash = attack_hooks.wrong_aggregate_hash(ctx, r, outcome.aggregate_hash)
    rewards_root = outcome.rewards_root
    excluded = sorted(outcome.excluded, key=lambda a: int(a, 16))
    digest = consensus.vote_digest(aggregate_hash, rewards_root, excluded)
    ctx.state.update(rec, digest=digest.hex(), aggregate_hash=aggregate_hash.hex(), aggregate_cid=model_cid,
                     rewards_cid=rewards_cid, excluded=excluded)
    if reconcile.vote(ctx, r, rec) is not OnChain.MISSING:
        return

    vote = vote_tx(ctx.ledger, r, aggregate_hash, model_cid, rewards_root, rewards_cid, excluded, digest)
    t = Timer()
    for _ in range(TOO_EARLY_RETRIES):
        try:
            receipt = ctx.retry("vote tx", lambda: send_time_dependent(vote, vote_gas(len(excluded))), round=r)
            break
        except Stopped:
            raise
        except (VotingNotOpen, VoteDeadlineNotReached):
            ctx.sleep(1.0)  # even the transaction's own block was too early: the chain's clock lags ours
        except AlreadyVoted:
            if reconcile.vote(ctx, r, rec) is OnChain.MISSING:  # the node has not served the event yet
                ctx.state.advance(rec, Phase.VOTED)
            return
        except (VotingClosed, RoundNotOpen, VoteOutOfOrder, AlreadySettled) as exc:
            # the vote deadline passed (or the round failed) before our vote, finalized or not
            ctx.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + [f"vote window closed ({type(exc).__name__})"],
                              verdict_start=ctx.round_info(r).start)
            ctx.nlog.event(r, "vote", "closed", level="warning", message=f"vote window closed: {exc}")
            return
    else:
        raise VoteNeverAccepted(f"round {r}: the chain kept refusing the vote as too early")
    rec.timings["chain_vote"] = t.elapsed
    depth = reconcile.depth_state(ctx, receipt.block_number)
    fields = {"vote_tx": receipt.tx_hash, "vote_status": depth.value, "vote_gas": receipt.gas_used}
    if depth is OnChain.CONFIRMED:
        ctx.state.advance(rec, Phase.VOTED, **fields)
    else:  # VOTED once `confirmations` blocks deep (reconcile.vote, while the loop awaits the round's end)
        ctx.state.update(rec, **fields)
    ctx.nlog.event(r, "vote", "mined", elapsed=t.elapsed, gas=receipt.gas_used, tx=receipt.tx_hash,
                   digest="0x" + digest.hex(), late=receipt.late or None,
                   confirmations=None if depth is OnChain.CONFIRMED else f"waiting for {ctx.cfg.confirmations}")
