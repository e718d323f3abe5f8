"""Read the round's commitments from the chain while the update exchange runs, not after it.

The collector needs round r's on-chain commitments before it can take any update. Read after the commit phase
ended, that `Committed`-log read sat in series between the last envelope's arrival and the aggregation. Here a
background thread (its own chain connection) re-reads them while the peer trains, publishes, commits and the
other members' blobs arrive — quickly while a member whose envelope is in has no commitment yet (its commit is
about to be mined), backing off otherwise. The own commitment is taken from this node's own mined commit (the
contract logs exactly the arguments of the call), so the slowest member — whose commit ends the phase — reads
nothing after it.

`complete()` hands a set over only when it is provably the chain's whole set for the round: every member in
the membership snapshot taken when the watch started (read from the chain after round r opened) has a
commitment in it. A member can commit in round r only once, and only if it counted in r when r opened — i.e. it
is in that snapshot unless it was removed first — so once they all have, no further `Committed` log can appear
for r, and each read holds every commitment logged before it. Anything else (a member that never committed, a
member appearing twice, two different own commitments) returns None and the caller reads the chain as before.
A rollback the round loop detects (`peer.loop.reconcile.rolled_back`) discards the watches, so the collector
reads afresh; otherwise a read ahead is the same kind of snapshot as the collector's own read after the phase.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from eth_abi import decode as abi_decode
from eth_utils import event_abi_to_log_topic, to_checksum_address
from web3.types import RPCEndpoint

from consensus.commitment import Commitment, canonical_order
from ledger_tools.chain import FederationLedger, LedgerError

log = logging.getLogger("fedledger.collect")

FAST = 0.02   # s between reads while a member's envelope is in but its commitment is not (its commit is imminent)
SLOW = 0.5    # s between reads at most otherwise (the interval doubles from FAST while nothing new appears)


_COMMITTED_DATA = ["bytes32", "string", "uint32", "uint64", "uint64"]  # the event's non-indexed fields, in order


def read_commitments(reader: FederationLedger, round: int) -> list[Commitment]:
    """`reader.commitments(round)` — the same records, in the same order — from one raw `eth_getLogs` decoded with
    eth_abi: web3's per-log event processing cost ~1 ms of interpreter time per commitment, time these reads
    took from the unsealing threads (the GIL) while the exchange ran."""
    topic = "0x" + event_abi_to_log_topic(next(e for e in reader.abi if e.get("type") == "event"
                                                and e.get("name") == "Committed")).hex()
    reply = reader.w3.provider.make_request(RPCEndpoint("eth_getLogs"), [{
        "address": reader.address, "fromBlock": hex(reader.deploy_block), "toBlock": "latest",
        "topics": [topic, "0x" + round.to_bytes(32, "big").hex()]}])
    if "result" not in reply:
        raise LedgerError(f"eth_getLogs: {reply.get('error')}")
    logs = sorted(reply["result"], key=lambda e: (int(e["blockNumber"], 16), int(e["logIndex"], 16)))
    out = []
    for e in logs:
        update_hash, cid, samples, eps, delta = abi_decode(_COMMITTED_DATA, bytes.fromhex(e["data"][2:]))
        out.append(Commitment(to_checksum_address("0x" + e["topics"][2][-40:]), bytes(update_hash), cid, int(samples),
                              int(e["topics"][1], 16), int(eps), int(delta), int(e["blockNumber"], 16),
                              "0x" + e["transactionHash"].removeprefix("0x").lower()))
    return sorted(out, key=lambda c: int(c.member, 16))


def reader_for(ledger: FederationLedger) -> FederationLedger:
    """A read-only binding of the same federation on its own connection (never the round loop's), made once."""
    key = (ledger.rpc_url, ledger.address)
    with _READERS_LOCK:
        reader = _READERS.get(key)
        if reader is None:
            reader = _READERS[key] = FederationLedger(ledger.rpc_url, ledger.address, abi=ledger.abi,
                                                      deploy_block=ledger.deploy_block)
        return reader


_READERS: dict[tuple[str, str], FederationLedger] = {}
_READERS_LOCK = threading.Lock()


class CommitmentsAhead:
    """Round `round`'s commitments, re-read in the background until every member in `members` has one."""

    def __init__(self, round: int, reader, members: Iterable[str], *, gossip=None, me: str | None = None,
                 fast: float = FAST, slow: float = SLOW) -> None:
        self.round, self.reader, self.gossip, self.me = round, reader, gossip, me
        self.members = frozenset(members)
        self.fast, self.slow = fast, slow
        self._seen: list[Commitment] | None = None
        self._own: Commitment | None = None
        self._reads = 0
        self._cond = threading.Condition()
        self._reading = False
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"commitments-ahead-r{round}", daemon=True)

    def start(self) -> CommitmentsAhead:
        with self._cond:
            self._reading = True  # the first read is in flight from here on: `complete` waits for it
        self._thread.start()
        return self

    # --- the background reads
    def _run(self) -> None:
        wait = self.fast
        try:
            while not self._stop.is_set() and self._complete() is None:
                before = self._known_members()
                self._read()
                missing = self.members - self._known_members() - {self.me}
                if not missing:
                    pause = self.slow  # only the own commitment is missing: `own_committed` wakes the thread
                elif self._known_members() != before or self._announced(missing):
                    pause = wait = self.fast
                else:
                    pause = wait = min(self.slow, wait * 2)
                self._wake.wait(pause)
                self._wake.clear()
        finally:
            with self._cond:
                self._reading = False
                self._cond.notify_all()

    def _read(self) -> None:
        with self._cond:
            self._reading = True
        try:
            seen = read_commitments(self.reader, self.round)
        except Exception as exc:  # noqa: BLE001 - an RPC failure: read again later; the collector's own read remains
            log.debug("commitments-ahead r%d: %r", self.round, exc)
            seen = None
        with self._cond:
            if seen is not None:
                self._seen = list(seen)
                self._reads += 1
            self._reading = False
            self._cond.notify_all()

    def _announced(self, missing: set[str]) -> bool:
        """One of the `missing` members' signed envelopes for this round has arrived: its commit is imminent."""
        if self.gossip is None:
            return False
        try:
            return any(env.sender in missing for env in self.gossip.envelopes(self.round))
        except Exception:  # noqa: BLE001 - a gossip node that died: back off as if nothing arrived
            return False

    def _known_members(self) -> set[str]:
        with self._cond:
            return {c.member for c in self._seen or ()}

    # --- the round loop's side
    def own_committed(self, c: Commitment) -> None:
        """This node's commitment, from its own mined commit transaction (no read needed)."""
        with self._cond:
            self._own = c
            if self._thread.is_alive() and not self._stop.is_set():
                self._reading = True  # the thread reads next (unless this completed the set): `complete` waits
        self._wake.set()

    def _complete(self) -> list[Commitment] | None:
        """The merged set (reads + own commit) in canonical order, if every snapshot member has a commitment."""
        with self._cond:
            seen, own = self._seen, self._own
        if seen is None:
            return None
        merged: dict[str, Commitment] = {}
        for c in [*seen, *([own] if own is not None else [])]:
            prior = merged.get(c.member)
            if c.round != self.round or (prior is not None and prior != c):
                return None  # twice for one member (a reorg moved it, or the own record differs): read afresh
            merged[c.member] = c
        if not self.members <= merged.keys():
            return None
        return [merged[m] for m in canonical_order(list(merged))]

    def complete(self, timeout: float = 5.0) -> list[Commitment] | None:
        """The round's commitments in canonical order if every snapshot member has one, else None (the caller
        reads the chain). If not yet, a read in flight is waited for (up to `timeout`): it began before a new
        read by the caller would."""
        done = self._complete()
        if done is None:
            with self._cond:
                self._cond.wait_for(lambda: not self._reading, timeout)
            done = self._complete()
        return done

    @property
    def reads(self) -> int:
        with self._cond:
            return self._reads

    def close(self) -> None:
        self._stop.set()
        self._wake.set()


#: The round loop's running watches, by (context, round): started with the round's commit step, taken by the
#: collector (which closes them).
_RUNNING: dict[tuple[int, int], CommitmentsAhead] = {}


def start_for(ctx, r: int) -> None:
    """Start reading round r's commitments in the background for this node (once per round)."""
    if (id(ctx), r) in _RUNNING:
        return
    for key in [k for k in _RUNNING if k[0] == id(ctx) and k[1] < r]:
        _RUNNING.pop(key).close()  # an earlier round whose collection never came (window missed)
    _RUNNING[(id(ctx), r)] = CommitmentsAhead(r, reader_for(ctx.ledger), ctx.membership.members, gossip=ctx.gossip,
                                              me=ctx.me).start()


def own_committed(ctx, r: int, c: Commitment) -> None:
    watch = _RUNNING.get((id(ctx), r))
    if watch is not None:
        watch.own_committed(c)


def take_running(ctx, r: int) -> CommitmentsAhead | None:
    """The watch started for round r, handed to the collector (which closes it), or None."""
    return _RUNNING.pop((id(ctx), r), None)


def discard(ctx) -> None:
    """Drop this node's watches (the chain lost blocks: what they read may be gone); the collector reads afresh."""
    for key in [k for k in _RUNNING if k[0] == id(ctx)]:
        _RUNNING.pop(key).close()
