"""Reconcile with the chain, always: what the state file says this peer did, checked against what the chain holds.

The state file (`peer.loop.state`) is a hint, never the authority. Before the round loop skips a step because
the file says it is done, and periodically while it waits for the next phase, it asks the chain: its own
commitment for the round (the `Committed` event of (round, self)), its own vote (`Voted`), the round's status.
A transaction counts as done only once `confirmations` blocks sit on top of it (peer config: 0 on anvil and
local devnets, more on real chains); until then the file records it as "pending".

If a transaction the file records is no longer on chain (a reorg, or a chain node restarted from an older
state) and is not waiting in the node's pool, the record is rewound, so the file never keeps claiming it, and
one warning line says so. While the round still accepts it, the loop then sends it again: the same update
(the sealed blob already on disk and on IPFS, same update hash) for a commit; for a vote, the round's outcome
recomputed from the commitments the chain holds now (deterministic: the same digest when nothing else changed).
"""
from __future__ import annotations

import enum
import time
from dataclasses import dataclass

from consensus.commitment import Commitment
from ledger_tools.chain import RoundInfo, RoundStatus
from ledger_tools.chain.confirmations import awaiting_inclusion, block_hash, head_block, is_deep_enough
from peer.loop import commitments_ahead
from peer.loop.context import NodeContext
from peer.loop.round_clock import CLOCK_SLACK, commit_window_open
from peer.loop.state import Phase, RoundRecord

#: While the loop waits for a phase: how often (seconds) it asks the chain whether its transactions still hold.
RECHECK_SECONDS = 2.0
#: After the chain's head went backwards: how many rounds before the current one are checked again, settled or not.
ROLLBACK_ROUNDS = 3


class OnChain(str, enum.Enum):
    """Where one of this peer's transactions stands on the chain."""

    CONFIRMED = "confirmed"   # on chain, at least `confirmations` blocks deep
    PENDING = "pending"       # on chain but shallower than that, or waiting in the node's pool
    MISSING = "missing"       # neither: never sent, or vanished


@dataclass(frozen=True)
class Seen:
    state: OnChain
    tx_hash: str | None = None
    block: int | None = None


def depth_state(ctx: NodeContext, block: int) -> OnChain:
    """CONFIRMED once `cfg.confirmations` blocks are on top of `block` (always, with 0: no extra read)."""
    n = ctx.cfg.confirmations
    if n == 0:
        return OnChain.CONFIRMED
    head = ctx.retry("read block number", lambda: head_block(ctx.ledger))
    return OnChain.CONFIRMED if is_deep_enough(head, block, n) else OnChain.PENDING


def own_commitment(ctx: NodeContext, r: int) -> tuple[Seen, Commitment | None]:
    for c in ctx.retry("read commitments", lambda: ctx.ledger.commitments(r), round=r):
        if c.member == ctx.me:
            return Seen(depth_state(ctx, c.block_number), c.tx_hash, c.block_number), c
    return Seen(OnChain.MISSING), None


def own_vote(ctx: NodeContext, r: int) -> Seen:
    for v in ctx.retry("read votes", lambda: ctx.ledger.votes(r), round=r):
        if v.member == ctx.me:
            return Seen(depth_state(ctx, v.block_number), v.tx_hash, v.block_number)
    return Seen(OnChain.MISSING)


def _in_pool(ctx: NodeContext, r: int, tx_hash: str | None) -> bool:
    return tx_hash is not None and ctx.retry("read transaction", lambda: awaiting_inclusion(ctx.ledger, tx_hash),
                                             round=r)


def _round_info(ctx: NodeContext, r: int) -> RoundInfo:
    return ctx.retry("read round info", lambda: ctx.ledger.round_info(r), round=r)


def commit_still_possible(ctx: NodeContext, r: int) -> bool:
    """A commit sent now could still count: round r is in its commit window, or not opened yet."""
    info = _round_info(ctx, r)
    if info.status == RoundStatus.NONE:
        return True
    return commit_window_open(info, info.member_count, ctx.clock(), ctx.cfg.commit_margin)


def vote_still_possible(ctx: NodeContext, r: int) -> bool:
    """A vote sent now could still be recorded: round r is not opened yet, open before its vote deadline, or
    finalized before its vote deadline (a late vote)."""
    info = _round_info(ctx, r)
    if info.status == RoundStatus.NONE:
        return True
    if info.status == RoundStatus.OPEN:
        return ctx.clock() < info.vote_deadline + CLOCK_SLACK
    return info.status == RoundStatus.FINALIZED and ctx.clock() < info.vote_deadline


# --- the commitment ------------------------------------------------------------------------------------------

def commit(ctx: NodeContext, r: int, rec: RoundRecord) -> OnChain:
    """Bring `rec`'s commit in line with the chain; returns where this peer's commitment for r stands."""
    seen, c = own_commitment(ctx, r)
    if seen.state is not OnChain.MISSING:
        assert c is not None
        fields = {"commit_tx": seen.tx_hash, "commit_status": seen.state.value, "update_hash": c.update_hash.hex(),
                  "cid": c.cid}
        if seen.state is OnChain.CONFIRMED:
            if rec.phase.order < Phase.COMMITTED.order or rec.phase is Phase.NO_COMMIT or _differs(rec, fields):
                ctx.state.advance(rec, Phase.COMMITTED, **fields)
        elif rec.phase is Phase.COMMITTED:  # shallower than the depth again (moved to a later block by a reorg)
            ctx.state.rewind(rec, Phase.PUBLISHED, **fields)
        elif _differs(rec, fields):
            ctx.state.update(rec, **fields)
        return seen.state
    if _in_pool(ctx, r, rec.commit_tx):
        if rec.phase is Phase.COMMITTED or rec.commit_status != OnChain.PENDING.value:
            ctx.state.rewind(rec, Phase.PUBLISHED if rec.phase is Phase.COMMITTED else rec.phase,
                             commit_status=OnChain.PENDING.value)
        return OnChain.PENDING
    if rec.commit_tx is not None or rec.phase is Phase.COMMITTED:
        _commit_vanished(ctx, r, rec)
    return OnChain.MISSING


def _commit_vanished(ctx: NodeContext, r: int, rec: RoundRecord) -> None:
    what = f"commit tx {rec.commit_tx or '(recorded without its hash)'}"
    if rec.update_hash:
        what += f" (update 0x{rec.update_hash[:16]})"
    cleared = {"commit_tx": None, "commit_status": None, "commit_gas": None}
    possible = not rec.phase.settled and commit_still_possible(ctx, r)
    if possible or (not rec.phase.settled and rec.phase.order <= Phase.COMMITTED.order
                    and rec.phase is not Phase.NO_COMMIT):
        # (a COMMITTED record with the window closed is rewound too: the commit step then records NO_COMMIT)
        ctx.state.rewind(rec, min(rec.phase, Phase.PUBLISHED, key=lambda p: p.order), **cleared)
    else:
        ctx.state.update(rec, notes=rec.notes + [f"{what} vanished from the chain"], **cleared)
    ctx.nlog.event(r, "commit", "vanished", level="warning",
                   message=f"{what} is no longer on chain (reorg or chain restart); "
                           + ("re-sending the same update" if possible
                              else "too late to re-send it: this round goes on without this peer's update"))


# --- the vote ------------------------------------------------------------------------------------------------

def vote(ctx: NodeContext, r: int, rec: RoundRecord) -> OnChain:
    """Bring `rec`'s vote in line with the chain; returns where this peer's vote for r stands."""
    seen = own_vote(ctx, r)
    if seen.state is not OnChain.MISSING:
        fields = {"vote_tx": seen.tx_hash, "vote_status": seen.state.value}
        if seen.state is OnChain.CONFIRMED:
            if rec.phase.order < Phase.VOTED.order or rec.phase is Phase.ABSTAINED or _differs(rec, fields):
                ctx.state.advance(rec, Phase.VOTED, **fields)
        elif rec.phase is Phase.VOTED:
            ctx.state.rewind(rec, Phase.COLLECTED, **fields)
        elif _differs(rec, fields):
            ctx.state.update(rec, **fields)
        return seen.state
    if _in_pool(ctx, r, rec.vote_tx):
        if rec.phase is Phase.VOTED or rec.vote_status != OnChain.PENDING.value:
            ctx.state.rewind(rec, Phase.COLLECTED if rec.phase is Phase.VOTED else rec.phase,
                             vote_status=OnChain.PENDING.value)
        return OnChain.PENDING
    if rec.vote_tx is not None or rec.phase is Phase.VOTED:
        _vote_vanished(ctx, r, rec)
    return OnChain.MISSING


def _vote_vanished(ctx: NodeContext, r: int, rec: RoundRecord) -> None:
    what = f"vote tx {rec.vote_tx or '(recorded without its hash)'}"
    if rec.digest:
        what += f" (digest 0x{rec.digest[:16]})"
    cleared = {"vote_tx": None, "vote_status": None, "vote_gas": None}
    # a settled record too: a late vote lost with the chain's last blocks is sent again before the deadline
    # (`settle.settle_earlier` does so for the rewound record)
    possible = vote_still_possible(ctx, r)
    if possible:
        ctx.state.rewind(rec, min(rec.phase, Phase.COLLECTED, key=lambda p: p.order), **cleared)
    elif rec.phase.settled:
        ctx.state.update(rec, notes=rec.notes + [f"{what} vanished from the chain"], **cleared)
    else:
        ctx.state.rewind(rec, Phase.ABSTAINED, notes=rec.notes + [f"{what} vanished after the vote window"],
                         **cleared)
    ctx.nlog.event(r, "vote", "vanished", level="warning",
                   message=f"{what} is no longer on chain (reorg or chain restart); "
                           + ("voting again" if possible else "too late to vote again"))


# --- whole rounds --------------------------------------------------------------------------------------------

def round_(ctx: NodeContext, r: int, rec: RoundRecord) -> bool:
    """Check every transaction `rec` claims (or has pending) and every window verdict it holds against the
    chain; True if the record was rewound (a step it skipped must run again). A record that claims nothing and
    holds no verdict costs no read."""
    before = rec.phase.order
    verdict(ctx, r, rec)
    # the vote first: a vanished commit rewinds the record below the vote step, which must then run again
    if rec.vote_tx is not None or rec.phase is Phase.VOTED:
        vote(ctx, r, rec)
    if rec.commit_tx is not None or rec.phase is Phase.COMMITTED:
        commit(ctx, r, rec)
    return rec.phase.order < before


def verdict(ctx: NodeContext, r: int, rec: RoundRecord) -> bool:
    """A NO_COMMIT / ABSTAINED verdict judged from round r's window holds only for the round as it was then
    (`rec.verdict_start`, its start on chain, 0 when it was not open): when the chain now reports another
    start, the round (re)opened later (a chain restart lost its first opening) with fresh windows, and the
    record is rewound so the steps judge it again. True if rewound."""
    if rec.verdict_start is None or rec.phase not in (Phase.NO_COMMIT, Phase.ABSTAINED):
        return False
    info = _round_info(ctx, r)
    if info.start == rec.verdict_start:
        return False
    was = rec.phase
    target = (Phase.COMMITTED if rec.commit_tx and rec.commit_status == OnChain.CONFIRMED.value else
              Phase.PUBLISHED if rec.cid else Phase.SEALED if rec.sealed_sha256 else
              Phase.TRAINED if rec.update_hash else Phase.NEW)
    ctx.state.rewind(rec, target, verdict_start=None,
                     notes=rec.notes + [f"{was.value} verdict dropped: round {r} (re)opened at {info.start}"])
    ctx.nlog.event(r, "round", "reopened", level="warning",
                   message=f"{was.value} was judged when round {r} started at {rec.verdict_start or 'never'}; the "
                           f"chain has it {info.status.name.lower()} from {info.start}: judging its windows again")
    return True


def rolled_back(ctx: NodeContext) -> bool:
    """True if the chain lost blocks since the last call: its head is lower than the head seen then, or the
    block at that height has another hash (a reorg, or a chain node restarted from an older state dump)."""
    head = ctx.retry("read head block", lambda: block_hash(ctx.ledger))
    seen, ctx.head_seen = ctx.head_seen, head
    if seen is None or head is None:
        return False
    lost = head[0] < seen[0] or ctx.retry("read block", lambda: block_hash(ctx.ledger, seen[0])) != seen
    if lost:
        commitments_ahead.discard(ctx)  # commitments read ahead may be gone with the lost blocks
    return lost


def after_rollback(ctx: NodeContext, r: int) -> bool:
    """If the chain rolled back (`rolled_back`): the records of round r and the `ROLLBACK_ROUNDS` rounds before
    it, settled ones included, against the chain's events; a vote or commit the chain lost is taken out of the
    file (re-sent while its round accepts it, else noted as lost). True if a record was rewound."""
    if not rolled_back(ctx):
        return False
    rewound = False
    for rec in list(ctx.state):
        if not r - ROLLBACK_ROUNDS <= rec.round <= r:
            continue
        before = rec.phase.order
        if rec.phase.settled and not settled(ctx, rec.round, rec):
            rewound = True
            continue
        rewound = round_(ctx, rec.round, rec) or rec.phase.order < before or rewound
    return rewound


def settled(ctx: NodeContext, r: int, rec: RoundRecord) -> bool:
    """The record says round r settled: True if the chain agrees; else the record is rewound to the last step
    whose transaction it holds (checked by `round_`) and the round is resumed."""
    info = _round_info(ctx, r)
    if info.status in (RoundStatus.FINALIZED, RoundStatus.FAILED):
        return True
    was = rec.phase
    target = (Phase.VOTED if rec.vote_tx else Phase.COLLECTED if rec.digest else
              Phase.COMMITTED if rec.commit_tx else Phase.PUBLISHED if rec.cid else Phase.NEW)
    ctx.state.rewind(rec, target)
    ctx.nlog.event(r, "round", "reopened", level="warning",
                   message=f"the state file says round {r} {was.value}, the chain has it "
                           f"{info.status.name.lower()} (reorg or chain restart); resuming the round")
    round_(ctx, r, rec)
    return False


def on_load(ctx: NodeContext) -> None:
    """At start-up: every unsettled record, and the settled records of the last two rounds, against the chain
    (a chain node restarted from an older state, or a reorg while this peer was down, loses recent blocks)."""
    current = ctx.retry("read current round", ctx.ledger.current_round)
    for rec in list(ctx.state):
        if rec.phase.settled and rec.round < current - 1:
            continue
        if rec.phase.settled and rec.round >= current:
            settled(ctx, rec.round, rec)
        else:
            round_(ctx, rec.round, rec)


class Watch:
    """`watch()` while the loop waits for a phase: every `every` seconds (or when `force`d) `after_rollback` and
    `round_`; True when a record was rewound, i.e. the loop must run the round's steps (and the late votes of
    earlier rounds) again."""

    def __init__(self, ctx: NodeContext, r: int, rec: RoundRecord, every: float = RECHECK_SECONDS) -> None:
        self.ctx, self.r, self.rec, self.every = ctx, r, rec, every
        self._last = time.monotonic()

    def __call__(self, force: bool = False) -> bool:
        now = time.monotonic()
        if not force and now - self._last < self.every:
            return False
        self._last = now
        rewound = after_rollback(self.ctx, self.r)
        return round_(self.ctx, self.r, self.rec) or rewound


def _differs(rec: RoundRecord, fields: dict) -> bool:
    return any(getattr(rec, k) != v for k, v in fields.items())
