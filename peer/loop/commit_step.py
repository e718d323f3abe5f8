"""Steps 2-5 of round r: train on M(r-1), encode, seal, publish (IPFS + gossip), commit on chain.

Restart safety: the trained update and its sealed blob are persisted before anything leaves the machine and
re-used on restart, and on a re-send after the mined commit vanished from the chain (an honest peer never
publishes two different updates for one round); the chain is asked (`peer.loop.reconcile.commit`) before
training and again right before the commit transaction, because a commit may have been mined after the node's
last write. The commit counts as done (phase COMMITTED) only `confirmations` blocks deep.
"""
from __future__ import annotations

import hashlib
import math

import consensus
from consensus.commitment import Commitment
from ledger_tools.chain import NO_DP, AlreadyCommitted, CommitClosed, RoundNotOpen
from peer.byzantine import attack_hooks
from peer.loop import commitments_ahead, kill_point, reconcile, unseal_ahead
from peer.loop.context import NodeContext
from peer.loop.log import Timer, round_
from peer.loop.publisher import cids_while
from peer.loop.reconcile import OnChain
from peer.loop.retry import Stopped
from peer.loop.state import Phase, RoundRecord


def privacy_to_chain(epsilon: float | None, delta: float | None) -> tuple[int, int]:
    """(epsilonE6, deltaE18) of a commitment; NO_DP when the update was trained without DP."""
    from peer.learning.privacy import privacy_to_chain as to_fixed_point

    if epsilon is None:
        return NO_DP, 0
    return to_fixed_point(epsilon, delta or 0.0)


def commit_own_update(ctx: NodeContext, r: int, rec: RoundRecord, model: bytes, model_hash: bytes) -> None:
    known = rec.commit_tx is not None
    on_chain = reconcile.commit(ctx, r, rec)
    if on_chain is not OnChain.MISSING:
        if not known:
            ctx.nlog.event(r, "commit", "recovered", message=f"commitment already on chain ({on_chain.value})")
        return
    if attack_hooks.is_silent(ctx):
        ctx.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + ["silent (attack)"])
        ctx.nlog.event(r, "commit", "silent", message="attack: silent, no commit")
        return
    is_open, info = ctx.commit_window(r)
    if not is_open:
        _skip(ctx, r, rec, "commit window closed before this node could commit; will still vote", info.start)
        return
    # the others' commitments are read from here on, while this node trains and the updates are exchanged
    commitments_ahead.start_for(ctx, r)

    update = ctx.state.read_artefact(r, "update.bin") if rec.phase.order >= Phase.TRAINED.order else None
    if update is None or rec.model_hash != model_hash.hex():
        update = train_update(ctx, r, rec, model, model_hash)
    update_hash = hashlib.sha256(update).digest()
    sealed, cid = _sealed(ctx, r, rec, update)
    cid = publish(ctx, r, rec, update_hash, sealed, cid)
    # the others' updates are unsealed as they arrive from here on: during the re-check and the commit tx
    # (I/O waits), not only after them (the collector still takes only what matches the chain's commitments)
    unseal_ahead.start_for(ctx, r)

    # re-check the chain right before sending
    if reconcile.commit(ctx, r, rec) is not OnChain.MISSING:
        return
    is_open, info = ctx.commit_window(r)
    if not is_open:
        _skip(ctx, r, rec, "commit window closed before the commit transaction", info.start)
        return
    send_commit(ctx, r, rec, update_hash, cid)


def _skip(ctx: NodeContext, r: int, rec: RoundRecord, why: str, start: int) -> None:
    """NO_COMMIT, judged from round r's window as the chain reports it now (`start`: the round's start, 0 when
    not open): `reconcile.verdict` drops the verdict when the round (re)opens later with another start."""
    ctx.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + [why], verdict_start=start)
    ctx.nlog.event(r, "commit", "skipped", level="warning", message=why)


def train_update(ctx: NodeContext, r: int, rec: RoundRecord, model: bytes, model_hash: bytes) -> bytes:
    """Local training on M(r-1); the canonical update `w_local - M(r-1)` (possibly poisoned), persisted."""
    from peer.learning.training import train_local

    t = Timer()
    global_state = consensus.decode(model)
    tc, pc = ctx.cfg.training, ctx.cfg.privacy
    dp = None
    if pc.enabled:
        from peer.learning.privacy import DPConfig

        dp = DPConfig(noise_multiplier=pc.noise_multiplier, max_grad_norm=pc.clip_norm, delta=pc.delta)
    history = [tuple(x) for x in ctx.state.meta.get("privacy_history", [])]
    result = train_local(
        ctx.task, global_state, ctx.training_data(), epochs=tc.local_epochs, batch_size=tc.batch_size,
        lr=tc.lr, momentum=tc.momentum, prox_mu=tc.mu if tc.algorithm == "fedprox" else 0.0, dp=dp,
        prior_privacy=history, seed=tc.seed * 1_000_003 + r,
    )
    update = attack_hooks.encode_update(ctx, attack_hooks.poison(ctx, r, result.update(global_state)))
    train_s = t.elapsed
    ctx.state.write_artefact(r, "update.bin", update)
    ctx.state.meta["privacy_history"] = [list(x) for x in result.privacy_history]
    rec.timings["train"] = train_s
    epsilon = None if math.isinf(result.epsilon) else result.epsilon
    ctx.state.advance(rec, Phase.TRAINED, model_hash=model_hash.hex(), update_hash=hashlib.sha256(update).hexdigest(),
                      num_samples=result.num_samples, epsilon=epsilon, delta=result.delta)
    ctx.nlog.event(r, "train", "done", elapsed=train_s, loss=round_(result.train_loss, 4), samples=result.num_samples,
                   epsilon=None if epsilon is None else round_(epsilon, 3))
    return update


def _sealed(ctx: NodeContext, r: int, rec: RoundRecord, update: bytes) -> tuple[bytes, str | None]:
    """The round's sealed blob (the persisted one on a restart) and, when sealed now, its CID."""
    sealed = ctx.state.read_artefact(r, "sealed.bin") if rec.phase.order >= Phase.SEALED.order else None
    if sealed is not None:
        return sealed, None
    t = Timer()
    sealed = ctx.seal(r, update)
    # persisted before anything leaves the machine; the CID computed meanwhile
    [cid] = cids_while(lambda: ctx.state.write_artefact(r, "sealed.bin", sealed), sealed)
    rec.timings["seal"] = t.elapsed
    ctx.state.advance(rec, Phase.SEALED, sealed_sha256=hashlib.sha256(sealed).hexdigest())
    ctx.nlog.event(r, "seal", "done", elapsed=t.elapsed,
                   message=f"{len(sealed)} bytes for {len(ctx.membership.recipients())} recipients")
    kill_point.pause_after(ctx.nlog, r, Phase.SEALED)  # test-only crash point; a no-op unless its env var is set
    return sealed, cid


def publish(ctx: NodeContext, r: int, rec: RoundRecord, update_hash: bytes, sealed: bytes,
            cid: str | None = None) -> str:
    """The sealed blob's CID (computed locally, unless given); its IPFS add (idempotent: same bytes, same CID)
    queued on the background publisher (`peer.loop.publisher`: the commitment needs only the CID), held until
    this peer has voted or `own_update_hold` has passed; then gossip it."""
    from ledger_tools.blobstore import unixfs_cid
    from peer.loop.publisher import own_update_hold

    t = Timer()
    cid = cid or unixfs_cid(sealed)
    hold = own_update_hold(ctx.cfg.gossip_wait) if ctx.gossip is not None else 0.0  # no gossip: IPFS is the path
    ctx.publisher.submit(r, "update", sealed, cid, hold=hold)
    rec.timings["ipfs"] = t.elapsed
    ctx.nlog.event(r, "ipfs", "queued", elapsed=t.elapsed, cid=cid)
    gossip_update(ctx, r, rec, update_hash, cid, sealed)
    ctx.state.advance(rec, Phase.PUBLISHED, cid=cid)
    return cid


def gossip_update(ctx: NodeContext, r: int, rec: RoundRecord, update_hash: bytes, cid: str, sealed: bytes) -> None:
    """Signed envelope + sealed blob to the federation's topic. Best effort: IPFS + chain stay the source of
    truth, so a gossip failure is logged, never fatal."""
    if ctx.gossip is None:
        return
    from peer.crypto.seal import SealError, parse_header
    from peer.net.envelope import Envelope

    t = Timer()
    try:
        header_len = parse_header(sealed).header_len
    except SealError:  # a garbage blob (attack) has no seal header
        header_len = 0
    update_hash, blob = attack_hooks.equivocating_blob(ctx, r, update_hash, sealed)
    try:
        envelope = Envelope.create(
            ctx.identity.account, federation=ctx.ledger.address, chain_id=ctx.ledger.chain_id, round=r,
            update_hash=update_hash, cid=cid, wrapped_keys=sealed[:min(header_len, 60_000)],
            blob_sha256=hashlib.sha256(blob).digest(), blob_size=len(blob),
        )
        # blob first: a large one is only spooled for the bulk path, so it is ready when the envelope's
        # receivers ask for it; a small one's chunks wait in receivers' stores for the envelope
        chunks = ctx.gossip.publish_blob(envelope, blob, ctx.identity.account)
        ctx.gossip.publish_envelope(envelope)
    except Exception as exc:  # noqa: BLE001 - gossip is best effort: IPFS + the commitment carry the round
        ctx.nlog.event(r, "gossip", "failed", level="warning", elapsed=t.elapsed, message=str(exc))
        return
    rec.timings["gossip"] = t.elapsed
    ctx.nlog.event(r, "gossip", "published", elapsed=t.elapsed, chunks=chunks,
                   peers=len(ctx.gossip.peers()) if hasattr(ctx.gossip, "peers") else None)


def send_commit(ctx: NodeContext, r: int, rec: RoundRecord, update_hash: bytes, cid: str) -> None:
    eps_e6, delta_e18 = privacy_to_chain(rec.epsilon, rec.delta)
    samples = min(int(rec.num_samples or 0), 2**32 - 1)
    t = Timer()
    try:
        receipt = ctx.retry("commit tx", lambda: ctx.ledger.commit(r, update_hash, cid, samples, eps_e6, delta_e18),
                            round=r)
    except Stopped:
        raise
    except AlreadyCommitted:
        if reconcile.commit(ctx, r, rec) is OnChain.MISSING:  # the node has not served the event yet
            ctx.state.advance(rec, Phase.COMMITTED)
        ctx.nlog.event(r, "commit", "recovered", message="already committed")
        return
    except (CommitClosed, RoundNotOpen) as exc:
        ctx.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + [f"commit rejected: {exc}"],
                          verdict_start=ctx.round_info(r).start)
        ctx.nlog.event(r, "commit", "rejected", level="warning", message=str(exc))
        return
    rec.timings["chain_commit"] = t.elapsed
    # what the contract logged for this call (its exact arguments): the collector need not read it back
    commitments_ahead.own_committed(ctx, r, Commitment(ctx.me, update_hash, cid, samples, r, eps_e6, delta_e18,
                                                       receipt.block_number, receipt.tx_hash))
    depth = reconcile.depth_state(ctx, receipt.block_number)
    fields = {"commit_tx": receipt.tx_hash, "commit_status": depth.value, "commit_gas": receipt.gas_used}
    if depth is OnChain.CONFIRMED:
        ctx.state.advance(rec, Phase.COMMITTED, **fields)
    else:  # COMMITTED once `confirmations` blocks deep (reconcile.commit, while the loop waits)
        ctx.state.update(rec, **fields)
    ctx.nlog.event(r, "commit", "mined", elapsed=t.elapsed, gas=receipt.gas_used, tx=receipt.tx_hash,
                   update_hash="0x" + update_hash.hex()[:16],
                   confirmations=None if depth is OnChain.CONFIRMED else f"waiting for {ctx.cfg.confirmations}")
