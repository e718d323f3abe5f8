"""IPFS adds off the round's critical path: the round goes on with the CID computed locally, the add runs behind it.

A blob's CID is a pure function of its bytes (`ledger_tools.blobstore.unixfs_cid`: CIDv1, raw leaves, 256 KiB
chunks — what the node computes too), so a peer can commit its sealed update, and vote with the new model's and
the reward tree's CIDs, as soon as it has hashed them. The add itself (~1 s for a 44 MB blob on a local js-ipfs
node) is done here, on one background thread, in submission order:

- the node's answer is checked against the local CID (`add(expected_cid=)`; a mismatch is logged as an error
  and not retried: the node is not storing what we committed);
- a failed add (node down, timeout, an error answer from a node that is restarting) is retried with backoff
  (0.5 s doubling to 10 s) for as long as the node runs, each retry logged as a `retry` warning (anything else
  — a bug — is given up after 3 attempts, as an error); when an add is still not done at its round's vote deadline
  a warning says so once (members whose bulk copy failed, and auditors, cannot read the blob until it lands);
- the sealed blob, the model and the reward tree stay on disk (`rounds/<r>/sealed.bin`, the model cache,
  `rounds/<r>/rewards.json`), so a peer killed before its adds finished re-adds them on restart (`resume`);
- `drain` waits for the queue to empty; the node calls it before it exits.

Who needs the blob and when: the other members take each update from the bulk path (peer.net.bulk) and read
IPFS only as a fallback, after their `gossip_wait` at the end of the commit phase; auditors read it after the
round. So the sealed update's add is *held* (`own_update_hold`: at most a third of `gossip_wait`, at most 1 s)
and released as soon as this peer has voted, whichever comes first: run at the commit, the node's add competed for
the same cores with the unsealing of the other members' updates as they arrived, and stretched that window (the
1M-parameter round's ledger share in `bench.scale` went from +20–25 % to +14–18 % with the hold). Held at most a
third of `gossip_wait`, it still lands before the other members turn to IPFS (an add takes 0.04–0.5 s of wall
time for 4–44 MB on the devnet node, `ipfs_add_own` in bench/results/scale.json), and it has the rest of the
commit phase plus the vote phase to land.
The model's and the reward tree's adds are queued once the vote is out (`peer.loop.vote_step.send_vote`).
"""
from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ledger_tools.blobstore import BlobIntegrityError, BlobStoreError, unixfs_cid
from peer.loop.log import NodeLog, Timer
from peer.loop.retry import is_transient

#: Rounds back from the newest one whose blobs `resume` re-checks on start-up.
RESUME_ROUNDS = 3
#: Longest hold of the own sealed update's add (see above), seconds.
OWN_UPDATE_HOLD = 1.0


def own_update_hold(gossip_wait: float) -> float:
    """Seconds the own sealed update's add waits for this peer's vote: a third of `gossip_wait`, at most 1 s."""
    return max(0.0, min(OWN_UPDATE_HOLD, gossip_wait / 3))


def cids_while(persist: Callable[[], None], *blobs: bytes) -> list[str]:
    """The blobs' CIDs, computed on another thread while `persist` (an fsync'ed write the round needs before
    anything leaves the machine: the sealed update, the reward tree) runs: the fsync mostly waits on the disk,
    hashing needs a core, and both sit on the round's critical path."""
    with ThreadPoolExecutor(1, thread_name_prefix="local-cid") as pool:
        cids = pool.submit(lambda: [unixfs_cid(b) for b in blobs])
        persist()
        return cids.result()


@dataclass
class AddJob:
    round: int
    what: str                              # "update" | "model" | "rewards"
    cid: str                               # computed locally: what the commitment / vote names
    load: Callable[[], bytes | None] | None  # the bytes (re-read from disk for a resumed add); dropped when done
    deadline: float | None = None          # unix time by which the blob must be on IPFS (the vote deadline)
    submitted: float = 0.0
    not_before: float = 0.0                # monotonic time before which the add waits, unless released
    done: float | None = None              # monotonic time the add returned the expected CID
    failed: str | None = None              # a non-retryable failure


class Publisher:
    """One background thread adding blobs to `blobstore`, in submission order, retrying transient failures."""

    def __init__(self, blobstore, nlog: NodeLog, *, clock: Callable[[], float] = time.time,
                 deadline_of: Callable[[int], float | None] | None = None,
                 base_delay: float = 0.5, max_delay: float = 10.0) -> None:
        """`deadline_of(round)`: the round's vote deadline (unix time), asked only once an add has failed."""
        self.blobstore, self.nlog, self.clock, self.deadline_of = blobstore, nlog, clock, deadline_of
        self.base_delay, self.max_delay = base_delay, max_delay
        self._queue: deque[AddJob] = deque()
        self._cond = threading.Condition()
        self._busy: AddJob | None = None
        self._closed = False
        self.finished: list[AddJob] = []
        self._thread: threading.Thread | None = None

    # --- submitting
    def submit(self, round: int, what: str, data: bytes | Callable[[], bytes | None], cid: str, *,
               deadline: float | None = None, hold: float = 0.0) -> AddJob:
        """Queue `data` (bytes, or a loader re-reading them from disk) for adding under the locally computed
        `cid`; returns at once. `hold`: seconds the add waits unless `release(round)` comes first (adds that
        are not held go ahead of it)."""
        load = data if callable(data) else (lambda: data)
        now = time.monotonic()
        job = AddJob(round, what, cid, load, deadline, submitted=now, not_before=now + max(0.0, hold))
        with self._cond:
            if self._closed:
                raise RuntimeError("publisher closed")
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ipfs-publisher", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return job

    def release(self, round: int) -> None:
        """Start `round`'s held adds now."""
        with self._cond:
            for job in self._queue:
                if job.round == round:
                    job.not_before = 0.0
            self._cond.notify_all()

    def pending(self, round: int | None = None) -> list[AddJob]:
        with self._cond:
            jobs = list(self._queue) + ([self._busy] if self._busy is not None else [])
        return [j for j in jobs if round is None or j.round == round]

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until every submitted add finished (or failed for good); False if some are still running."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy is not None:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float | None = 60.0) -> bool:
        """Drain (up to `timeout`), then stop the thread. Adds still pending are logged; their bytes stay on
        disk and `resume` adds them on the next start."""
        drained = self.drain(timeout)
        with self._cond:
            left = list(self._queue) + ([self._busy] if self._busy is not None else [])
            self._closed = True
            self._cond.notify_all()
        for job in left:
            self.nlog.event(job.round, "ipfs", "unfinished", level="warning", cid=job.cid,
                            message=f"{job.what} not on IPFS at exit; re-added from disk on the next start")
        return drained

    # --- the worker
    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next()
                if job is None:
                    return
                self._busy = job
            try:
                self._add(job)
            finally:
                job.load = None  # a finished job must not keep a 44 MB blob alive
                with self._cond:
                    self._busy = None
                    self.finished.append(job)
                    del self.finished[:-64]
                    self._cond.notify_all()

    def _next(self) -> AddJob | None:
        """The first queued job not held (waiting for one, under the lock); None once closed."""
        while not self._closed:
            now = time.monotonic()
            ready = next((j for j in self._queue if j.not_before <= now), None)
            if ready is not None:
                self._queue.remove(ready)
                return ready
            self._cond.wait(min((j.not_before for j in self._queue), default=now + 3600) - now)
        return None

    def _add(self, job: AddJob) -> None:
        t = Timer()
        delay, warned_late = self.base_delay, False
        attempt = 0
        while True:
            data = job.load() if job.load is not None else None
            if data is None:
                job.failed = "bytes no longer on disk"
                self.nlog.event(job.round, "ipfs", "lost", level="warning", cid=job.cid,
                                message=f"{job.what}: {job.failed}; not added")
                return
            try:
                self.blobstore.add(data, expected_cid=job.cid)
            except BlobIntegrityError as exc:
                job.failed = str(exc)
                self.nlog.event(job.round, "ipfs", "mismatch", level="error", cid=job.cid,
                                message=f"{job.what}: the node's CID differs from the local one: {exc}")
                return
            except Exception as exc:  # noqa: BLE001 - an add that fails is retried (transient) or logged; never
                # allowed to kill the thread that every later add needs
                attempt += 1
                del data
                if not (is_transient(exc) or isinstance(exc, BlobStoreError)) and attempt >= 3:
                    job.failed = f"{type(exc).__name__}: {exc}"
                    self.nlog.event(job.round, "ipfs", "failed", level="error", cid=job.cid,
                                    message=f"{job.what} add failed {attempt} times: {job.failed}")
                    return
                self.nlog.event(job.round, "retry", "retry", level="warning",
                                message=f"ipfs add {job.what} failed ({type(exc).__name__}: {exc}); "
                                        f"retry {attempt} in {delay:.1f}s (in the background)")
                if not warned_late and self._past_deadline(job):
                    warned_late = True
                    self.nlog.event(job.round, "ipfs", "late", level="warning", cid=job.cid,
                                    message=f"{job.what} still not on IPFS at the round's vote deadline; "
                                            "still retrying (IPFS-fallback readers and auditors wait for it)")
                with self._cond:
                    if self._closed:
                        return
                    self._cond.wait(delay)  # close() wakes it up
                    if self._closed:
                        return
                delay = min(delay * 2, self.max_delay)
                continue
            job.done = time.monotonic()
            self.nlog.event(job.round, "ipfs", "added", elapsed=t.elapsed, cid=job.cid,
                            message=f"{job.what}, {len(data)} bytes, in the background")
            return


    def _past_deadline(self, job: AddJob) -> bool:
        if job.deadline is None and self.deadline_of is not None:
            try:
                job.deadline = self.deadline_of(job.round)
            except Exception:  # noqa: BLE001 - the chain is unreachable too: ask again at the next retry
                return False
        return job.deadline is not None and self.clock() > job.deadline


def resume(publisher: Publisher, ctx, *, rounds: int = RESUME_ROUNDS) -> int:
    """On start-up: re-add the recent rounds' sealed update, model and reward tree that a killed peer may not
    have finished adding (the store's `has` tells; the bytes come from the state directory). Returns the number
    of adds queued. Runs in the caller's thread but only queues the adds."""
    records = [rec for rec in ctx.state if rec.cid or rec.aggregate_cid or rec.rewards_cid][-rounds:]
    queued = 0
    for rec in records:
        r = rec.round
        wanted = [
            ("update", rec.cid, lambda r=r: ctx.state.read_artefact(r, "sealed.bin")),
            ("model", rec.aggregate_cid,
             lambda h=rec.aggregate_hash: ctx.models.cached(bytes.fromhex(h)) if h else None),
            ("rewards", rec.rewards_cid, lambda r=r: ctx.state.read_artefact(r, "rewards.json")),
        ]
        for what, cid, load in wanted:
            if not cid:
                continue
            try:
                if ctx.blobstore.has(cid):
                    continue
            except Exception as exc:  # noqa: BLE001 - node unreachable now: queue the add, the worker retries
                ctx.nlog.event(r, "ipfs", "resume", level="warning", message=f"cannot ask the node for {cid}: {exc}")
            data = load()
            if data is None or unixfs_cid(data) != cid:
                continue  # not ours to add (e.g. a model we did not keep), or the file changed
            publisher.submit(r, what, data, cid)
            queued += 1
    return queued
