"""Where the opt-in Byzantine behaviours (`peer.byzantine.adversary`) plug into the round loop; honest nodes skip this.

Kept apart from the honest steps so that reading `peer.loop.commit_step` / `peer.loop.vote_step` shows the protocol,
and every deviation from it is in this one file.
"""
from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

import consensus
from peer.loop.context import NodeContext

log = logging.getLogger("fedledger.attack")


def encode_update(ctx: NodeContext, tensors: Any) -> bytes:
    """Canonical bytes at the federation's scale (an adversary may hand over raw garbage bytes instead)."""
    if isinstance(tensors, (bytes, bytearray)):
        return bytes(tensors)
    return consensus.encode(tensors, scale_bits=ctx.params.scale_bits)


def poison(ctx: NodeContext, r: int, update: dict) -> Any:
    """The update this node publishes: `update` itself for an honest node, else the attack's version."""
    adv = ctx.adversary
    if adv is None:
        return update
    if adv.sends_garbage:
        return adv.garbage_blob(round=r)
    if not adv.poisons_update:
        return update
    n, f = len(ctx.membership.members), ctx.params.f
    others = visible_updates(ctx, r) if adv.attack.needs_other_updates else []
    try:
        poisoned = adv.poison_update(update, round=r, honest=others, n=n, f=f, rule=ctx.params.rule,
                                       scale_bits=ctx.params.scale_bits)
    except ValueError:
        # ALIE without any other update in sight: estimate the spread from our own update.
        estimate = (update, {k: v.abs() for k, v in update.items()})
        poisoned = adv.attack.apply(update, estimate=estimate, n=n, f=f, **dict(adv.params))
    ctx.nlog.event(r, "attack", adv.attack.value, message=f"poisoned update ({len(others)} others seen)")
    return poisoned


def visible_updates(ctx: NodeContext, r: int, timeout: float = 8.0) -> list[dict]:
    """Other members' round-r updates this (Byzantine) node can unseal from gossip: a rushing attacker."""
    gossip = ctx.gossip
    if gossip is None:
        return []
    others = len(ctx.membership.members) - 1
    info = ctx.ledger.round_info(r)
    timeout = max(0.0, min(timeout, info.commit_deadline - time.time() - ctx.cfg.commit_margin - 3))

    def senders() -> set[str]:
        return {
            e.sender
            for e in gossip.envelopes(r)
            if e.sender != ctx.me and gossip.blob(e.update_hash, sender=e.sender) is not None
        }

    gossip.wait_for(lambda: len(senders()) >= others, timeout)
    seen = []
    for env in gossip.envelopes(r):
        if env.sender == ctx.me:
            continue
        try:
            seen.append(consensus.decode(ctx.unseal(gossip.blob(env.update_hash, sender=env.sender), env.sender, r)))
        except Exception:  # noqa: BLE001 - an unusable copy is simply not seen
            continue
    return seen


def equivocating_blob(ctx: NodeContext, r: int, update_hash: bytes, sealed: bytes) -> tuple[bytes, bytes]:
    """(update hash, sealed blob) to gossip: the committed ones, or for an equivocator a different update.

    With `equivocate:pair=1` the committed update is gossiped too, under its own signed envelope: two envelopes
    of one round naming two update hashes, which any peer can submit to the governor to slash this member."""
    if ctx.adversary is None or not ctx.adversary.equivocates:
        return update_hash, sealed
    if ctx.adversary.params.get("pair"):
        _gossip_committed(ctx, r, update_hash, sealed)
    try:
        committed = consensus.decode(ctx.state.read_artefact(r, "update.bin"))
        other = encode_update(ctx, ctx.adversary.equivocation_update(committed, round=r))
    except Exception as exc:  # noqa: BLE001 - a failing experiment attack must not stop the node
        log.warning("equivocation failed: %s", exc)
        return update_hash, sealed
    ctx.nlog.event(r, "attack", "equivocate", message="gossiping a different update than committed")
    return hashlib.sha256(other).digest(), ctx.seal(r, other)


def _gossip_committed(ctx: NodeContext, r: int, update_hash: bytes, sealed: bytes) -> None:
    """The first half of a paired equivocation: the committed update under its own signed envelope."""
    from peer.crypto.seal import SealError, parse_header
    from peer.net.envelope import Envelope

    if ctx.gossip is None:
        return
    try:
        header_len = parse_header(sealed).header_len
    except SealError:
        header_len = 0
    try:
        envelope = Envelope.create(
            ctx.identity.account, federation=ctx.ledger.address, chain_id=ctx.ledger.chain_id, round=r,
            update_hash=update_hash, cid=ctx.blobstore.add(sealed), wrapped_keys=sealed[:min(header_len, 60_000)],
            blob_sha256=hashlib.sha256(sealed).digest(), blob_size=len(sealed),
        )
        ctx.gossip.publish_blob(envelope, sealed, ctx.identity.account)
        ctx.gossip.publish_envelope(envelope)
    except Exception as exc:  # noqa: BLE001 - a failing experiment attack must not stop the node
        log.warning("paired equivocation failed: %s", exc)


def wrong_aggregate_hash(ctx: NodeContext, r: int, aggregate_hash: bytes) -> bytes:
    """The aggregate hash to vote. The contract recomputes the digest from the vote's arguments, so a wrong
    voter has to lie about the aggregate itself."""
    if ctx.adversary is None or not ctx.adversary.votes_wrong:
        return aggregate_hash
    ctx.nlog.event(r, "attack", "wrong_vote", message="voting a wrong aggregate hash")
    return ctx.adversary.vote_digest(aggregate_hash, round=r)


def is_silent(ctx: NodeContext) -> bool:
    return ctx.adversary is not None and ctx.adversary.silent
