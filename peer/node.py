"""The peer node's round loop: the protocol's steps 1-9 as a restartable state machine.

One `PeerNode` = one member institution. For every round r it: waits for r to open → fetches the global
model M(r-1) (hash + CID from chain, bytes from its cache or IPFS, sha256-checked) → trains locally →
encodes `w_local - M(r-1)` canonically → seals it for every member and auditor → adds the sealed blob to
IPFS → gossips a signed envelope and the blob → commits on chain → waits for the commit phase to end →
collects every committed update (gossip first, IPFS fallback) → `compute_round_outcome` → publishes the
new model and reward tree on IPFS → votes → awaits finalization (or closes the round as failed).

Restart safety: after every step the phase and what was sent are persisted (`peer.state`), and before a
commit or a vote the chain itself is asked whether this member already did it, so a peer killed at any
point never double-commits, never double-votes and never publishes two different updates for one round.
A peer that was down catches up at the chain's current round; a round whose commit window it missed is
still voted on (it is a member), just without its own update.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import consensus
from ledger_tools.round_outcome import RoundNotAggregatable, compute_round_outcome
from peer.collect import Commitment, collect_updates
from peer.config import PeerConfig
from peer.identity import PeerIdentity
from peer.state import Phase, PeerState, RoundRecord, atomic_write_bytes

log = logging.getLogger("fedledger.node")
T = TypeVar("T")

# Round phase codes of FederationLedger.phase(r)
PHASE_NONE, PHASE_COMMIT, PHASE_VOTE, PHASE_EXPIRED, PHASE_FINALIZED, PHASE_FAILED = range(6)
UINT64_MAX = 2**64 - 1
CLOCK_SLACK = 1.0   # seconds between wall clock and block timestamps we tolerate


class NodeError(Exception):
    """The node cannot run (wrong model spec, not a member, unusable state directory)."""


class Stopped(Exception):
    """The node was asked to stop (SIGTERM / Ctrl-C); everything done so far is persisted."""


class ModelSpecMismatch(NodeError):
    """This peer's task builds a different model than the federation's on-chain model spec."""


# --------------------------------------------------------------------------------------------------
# Logging: rich human lines or one JSON object per line (the demo parses the latter)


class NodeLog:
    """Per-phase progress lines. JSON mode: one object per line on stdout with at least
    `ts, peer, name, round, phase, event, elapsed` and, when known, `accuracy`, `gas`, `tx`, `message`."""

    def __init__(self, peer: str, name: str | None = None, *, json_mode: bool = False, stream=None) -> None:
        self.peer = peer
        self.name = name or peer[:10]
        self.json_mode = json_mode
        self.stream = stream or sys.stdout
        self._console = None
        if not json_mode:
            from rich.console import Console

            self._console = Console(file=self.stream, highlight=False, soft_wrap=True)

    def event(self, round: int | None, phase: str, event: str = "done", *, elapsed: float | None = None,
              message: str = "", level: str = "info", **fields: Any) -> None:
        record = {
            "ts": round_(time.time(), 3), "peer": self.peer, "name": self.name, "round": round, "phase": phase,
            "event": event, "elapsed": None if elapsed is None else round_(elapsed, 3), "level": level,
        }
        record.update({k: v for k, v in fields.items() if v is not None})
        if message:
            record["message"] = message
        if self.json_mode:
            self.stream.write(json.dumps(record, default=str) + "\n")
            self.stream.flush()
            return
        colour = {"info": "cyan", "warning": "yellow", "error": "red"}.get(level, "white")
        extras = " ".join(
            f"{k}={_fmt(v)}" for k, v in fields.items() if v is not None and k not in ("digest",)
        )
        took = f" [dim]{elapsed:.2f}s[/]" if elapsed is not None else ""
        r = f"r{round}" if round is not None else "--"
        text = f"[bold]{self.name}[/] {r} [{colour}]{phase:<9}[/] {event}{took}"
        if message:
            text += f"  {message}"
        if extras:
            text += f"  [dim]{extras}[/]"
        assert self._console is not None
        self._console.print(text, markup=True)


def round_(x: float, nd: int) -> float:
    return float(f"{x:.{nd}f}")


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


# --------------------------------------------------------------------------------------------------
# Retry with backoff for transient RPC / IPFS failures


def is_transient(exc: BaseException) -> bool:
    """Network-level failures worth retrying (never a contract revert or a programming error)."""
    from ledger_tools.blobstore import BlobStoreUnavailable

    if isinstance(exc, (BlobStoreUnavailable, ConnectionError, TimeoutError)):
        return True
    try:
        import requests

        if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
            return True
    except ImportError:  # pragma: no cover
        pass
    name = type(exc).__name__
    return name in ("ProviderConnectionError", "TimeExhausted", "ClientConnectorError", "RemoteDisconnected")


@dataclass
class Timer:
    started: float = field(default_factory=time.perf_counter)

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


# --------------------------------------------------------------------------------------------------
# The node


class PeerNode:
    """A member's node. `chain` is a `peer.chain_port.ChainPort`-like adapter (see `fedledger.peer_run`)."""

    def __init__(
        self,
        config: PeerConfig,
        identity: PeerIdentity,
        *,
        chain,
        blobstore,
        gossip=None,
        task=None,
        nlog: NodeLog | None = None,
        adversary=None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from peer.tasks import get_task

        self.cfg = config
        self.identity = identity
        self.me = identity.address
        self.chain = chain
        self.blobstore = blobstore
        self.gossip = gossip
        self.task = task or get_task(config.task)
        self.nlog = nlog or NodeLog(self.me, config.name)
        self.adversary = adversary
        self.sleep = sleep
        self.state = PeerState(config.state_dir, federation=chain.address, address=self.me)
        self.models_dir = self.state.dir / "models"
        self._params = None
        self._data = None
        self._members: dict[str, bytes] = {}
        self._auditors: dict[str, bytes] = {}
        self._stop = False
        self.current_round = 0

    # ------------------------------------------------------------------ helpers

    def retry(self, what: str, fn: Callable[[], T], *, round: int | None = None, attempts: int = 8,
              base_delay: float = 0.5) -> T:
        delay = base_delay
        for attempt in range(1, attempts + 1):
            if self._stop:
                raise Stopped()
            try:
                return fn()
            except Exception as exc:
                if not is_transient(exc) or attempt == attempts:
                    raise
                self.nlog.event(round, "retry", "retry", level="warning",
                                message=f"{what} failed ({type(exc).__name__}: {exc}); retry {attempt} in {delay:.1f}s")
                self.sleep(delay)
                delay = min(delay * 2, 10.0)
        raise AssertionError("unreachable")

    @property
    def params(self):
        if self._params is None:
            self._params = self.retry("read parameters", self.chain.params)
        return self._params

    def stop(self) -> None:
        self._stop = True

    def refresh_membership(self) -> None:
        self._members = self.retry("read members", self.chain.member_keys)
        self._auditors = self.retry("read auditors", self.chain.auditor_keys)

    def is_member(self, address: str) -> bool:
        if address in self._members:
            return True
        self.refresh_membership()
        return address in self._members

    # ------------------------------------------------------------------ start-up checks

    def check_startup(self) -> None:
        """Refuse to run with a mismatching model spec, or as a non-member."""
        p = self.params
        local = self.task.model_spec().spec_hash()
        if local != p.model_spec_hash:
            raise ModelSpecMismatch(
                f"task {self.task.task_id!r} builds model spec 0x{local.hex()}, but the federation at "
                f"{self.chain.address} requires 0x{p.model_spec_hash.hex()}; run the federation's task/architecture"
            )
        self.refresh_membership()
        if self.me not in self._members:
            raise NodeError(f"{self.me} is not a member of the federation at {self.chain.address}")
        if self._members[self.me] != self.identity.enc_public_key:
            raise NodeError(
                f"the X25519 key registered for {self.me} differs from this identity's; wrong state dir?"
            )

    def training_data(self):
        if self._data is None:
            from peer.partition import dirichlet_partition, iid_partition

            d = self.cfg.data
            if d.partition == "csv":
                from peer.tasks import CsvTask

                task = self.task if isinstance(self.task, CsvTask) else CsvTask(d.csv_path, d.label)
                self._data = task.train_data
            else:
                train = self.task.train_data
                if d.partition == "full":
                    self._data = train
                elif d.partition == "iid":
                    self._data = train.subset(iid_partition(len(train), d.num_partitions, d.seed)[d.partition_index])
                else:
                    parts = dirichlet_partition(train.labels, d.num_partitions, d.alpha, d.seed)
                    self._data = train.subset(parts[d.partition_index])
            if self.adversary is not None and self.adversary.poisons_data:
                self._data = self.adversary.poison_data(self._data, self.task.num_classes)
        return self._data

    # ------------------------------------------------------------------ global model

    def _model_path(self, model_hash: bytes) -> Path:
        return self.models_dir / f"{model_hash.hex()}.bin"

    def cache_model(self, data: bytes) -> bytes:
        h = hashlib.sha256(data).digest()
        path = self._model_path(h)
        if not path.exists():
            atomic_write_bytes(path, data)
        return h

    def global_model(self, round: int) -> tuple[bytes, bytes]:
        """M(round-1): (canonical bytes, sha256), verified against the chain's model hash."""
        model_hash, model_round = self.retry("read model", self.chain.model, round=round)
        path = self._model_path(model_hash)
        if path.exists():
            data = path.read_bytes()
            if hashlib.sha256(data).digest() == model_hash:
                return data, model_hash
        cid = self.retry("read model cid", lambda: self.chain.model_cid(model_round), round=round)
        t = Timer()
        data = self.retry(f"ipfs cat {cid}", lambda: self.blobstore.cat(cid, expected_sha256=model_hash), round=round)
        self.cache_model(data)
        self.nlog.event(round, "model", "fetched", elapsed=t.elapsed, message=f"M({model_round}) from IPFS {cid}")
        return data, model_hash

    def evaluate(self, model: bytes) -> float | None:
        if not self.cfg.evaluate:
            return None
        try:
            return float(self.task.evaluate(consensus.decode(model)).accuracy)
        except Exception as exc:  # evaluation is informative only
            log.warning("evaluation failed: %s", exc)
            return None

    # ------------------------------------------------------------------ main loop

    def run(self) -> dict[int, RoundRecord]:
        """Run rounds until `max_rounds` is settled (or forever); returns this node's round records."""
        t = Timer()
        self.check_startup()
        p = self.params
        self.nlog.event(None, "start", "ready", elapsed=t.elapsed,
                        message=f"federation {self.chain.address} rule={p.rule} f={p.f} task={self.task.task_id} "
                                f"samples={len(self.training_data())}"
                                + (f" attack={self.cfg.adversary.attack}" if self.cfg.adversary.attack else ""))
        failures = 0
        while not self._stop:
            r = self.retry("read current round", self.chain.current_round)
            self.current_round = r
            if self.cfg.max_rounds is not None and r > self.cfg.max_rounds:
                break
            try:
                self.run_round(r)
                failures = 0
            except Stopped:
                break
            except (NodeError, KeyboardInterrupt):
                raise
            except Exception as exc:
                failures += 1
                delay = min(2.0 ** failures, 20.0)
                log.debug("round %d failed", r, exc_info=True)
                self.nlog.event(r, "error", "retry", level="error",
                                message=f"{type(exc).__name__}: {exc}; resuming round in {delay:.0f}s")
                self.sleep(delay)
        self.nlog.event(None, "stop", "done", elapsed=t.elapsed,
                        message=f"{sum(1 for x in self.state if x.phase is Phase.FINALIZED)} rounds finalized")
        return dict(self.state.rounds)

    def _note_missed(self, r: int) -> None:
        known = [x.round for x in self.state]
        last = max(known) if known else 0
        if known and last < r - 1:
            self.nlog.event(r, "catchup", "skipped", level="warning",
                            message=f"rounds {last + 1}..{r - 1} settled while this node was away")

    def run_round(self, r: int) -> None:
        rec = self.state.record(r)
        if rec.phase.settled:
            self._wait_round_closed(r)
            return
        if rec.phase is Phase.NEW:
            self._note_missed(r)
            self.state.save()
        self._settle_earlier(r)
        self.refresh_membership()
        round_timer = Timer()
        model, model_hash = self.global_model(r)
        if rec.phase.order < Phase.COMMITTED.order:
            self._commit_part(r, rec, model, model_hash)
        self._wait_commit_phase_end(r)
        if rec.phase.order < Phase.VOTED.order:
            self._vote_part(r, rec, model)
        self._await_settled(r, rec)
        self.nlog.event(r, "round", rec.phase.value, elapsed=round_timer.elapsed, accuracy=rec.accuracy,
                        timings={k: round_(v, 3) for k, v in rec.timings.items()})
        if self.gossip is not None:
            try:
                self.gossip.forget_rounds_before(r)
            except Exception:
                pass

    # ------------------------------------------------------------------ steps 2-5: train, seal, publish, commit

    def _chain_commitment(self, r: int):
        for c in self.retry("read commitments", lambda: self.chain.commitments(r), round=r):
            if c.peer == self.me:
                return c
        return None

    def _commit_part(self, r: int, rec: RoundRecord, model: bytes, model_hash: bytes) -> None:
        # The chain is the authority: a commit tx may have been mined after our last write.
        mine = self._chain_commitment(r)
        if mine is not None:
            self.state.advance(rec, Phase.COMMITTED, update_hash=mine.update_hash.hex(), cid=mine.cid)
            self.nlog.event(r, "commit", "recovered", message="commitment already on chain")
            return
        if self.adversary is not None and self.adversary.silent:
            self.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + ["silent (attack)"])
            self.nlog.event(r, "commit", "silent", message="attack: silent, no commit")
            return
        info = self.retry("read round info", lambda: self.chain.round_info(r), round=r)
        if not self._commit_window_open(r, info):
            self.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + ["commit window closed"])
            self.nlog.event(r, "commit", "skipped", level="warning",
                            message="commit window closed before this node could commit; will still vote")
            return

        # --- train (re-use a persisted update: an honest peer never commits two different updates)
        update = self.state.read_artefact(r, "update.bin") if rec.phase.order >= Phase.TRAINED.order else None
        if update is None or rec.model_hash != model_hash.hex():
            update = self._train(r, rec, model, model_hash)
        update_hash = hashlib.sha256(update).digest()

        # --- seal
        sealed = self.state.read_artefact(r, "sealed.bin") if rec.phase.order >= Phase.SEALED.order else None
        if sealed is None:
            t = Timer()
            sealed = self._seal(r, update)
            self.state.write_artefact(r, "sealed.bin", sealed)
            rec.timings["seal"] = t.elapsed
            self.state.advance(rec, Phase.SEALED, sealed_sha256=hashlib.sha256(sealed).hexdigest())
            self.nlog.event(r, "seal", "done", elapsed=t.elapsed,
                            message=f"{len(sealed)} bytes for {len(self._members) + len(self._auditors)} recipients")

        # --- publish: IPFS (idempotent: same bytes, same CID) then gossip
        t = Timer()
        cid = self.retry("ipfs add", lambda: self.blobstore.add(sealed), round=r)
        rec.timings["ipfs"] = t.elapsed
        self.nlog.event(r, "ipfs", "added", elapsed=t.elapsed, cid=cid)
        self._gossip_publish(r, rec, update_hash, cid, sealed)
        self.state.advance(rec, Phase.PUBLISHED, cid=cid)

        # --- commit (re-check the chain right before sending)
        commit_hash, commit_cid = update_hash, cid
        if self._chain_commitment(r) is not None:
            self.state.advance(rec, Phase.COMMITTED)
            return
        info = self.retry("read round info", lambda: self.chain.round_info(r), round=r)
        if not self._commit_window_open(r, info):
            self.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + ["commit window closed before tx"])
            self.nlog.event(r, "commit", "skipped", level="warning", message="commit window closed before tx")
            return
        eps_e6, delta_e18 = _privacy_to_chain(rec.epsilon, rec.delta)
        t = Timer()
        try:
            receipt = self.retry("commit tx", lambda: self.chain.commit(
                r, commit_hash, commit_cid, min(int(rec.num_samples or 0), 2**32 - 1), eps_e6, delta_e18), round=r)
        except Exception as exc:
            kind = self.chain.classify_error(exc)
            if kind == "already":
                self.state.advance(rec, Phase.COMMITTED)
                self.nlog.event(r, "commit", "recovered", message="already committed")
                return
            if kind in ("closed", "not_open"):
                self.state.advance(rec, Phase.NO_COMMIT, notes=rec.notes + [f"commit rejected: {exc}"])
                self.nlog.event(r, "commit", "rejected", level="warning", message=str(exc))
                return
            raise
        rec.timings["chain_commit"] = t.elapsed
        self.state.advance(rec, Phase.COMMITTED, commit_tx=receipt.tx_hash, commit_gas=receipt.gas_used)
        self.nlog.event(r, "commit", "mined", elapsed=t.elapsed, gas=receipt.gas_used, tx=receipt.tx_hash,
                        update_hash="0x" + commit_hash.hex()[:16])

    def round_phase(self, r: int) -> int:
        """Phase of round r now. Open rounds are judged by the wall clock, not by the latest block's
        timestamp: on a devnet that mines only on demand the latest block can be minutes old, but the
        next transaction's block is stamped with the current time."""
        info = self.retry("read round info", lambda: self.chain.round_info(r), round=r)
        if info.status == 0:
            return PHASE_NONE
        if info.status == 2:
            return PHASE_FINALIZED
        if info.status == 3:
            return PHASE_FAILED
        now = time.time()
        if info.commit_count < len(self._members) and now < info.commit_deadline + CLOCK_SLACK:
            return PHASE_COMMIT
        if now < info.vote_deadline + CLOCK_SLACK:
            return PHASE_VOTE
        return PHASE_EXPIRED

    def _commit_window_open(self, r: int, info) -> bool:
        if info.status != 1 or info.commit_count >= len(self._members):
            return False
        return time.time() < info.commit_deadline - self.cfg.commit_margin

    def _train(self, r: int, rec: RoundRecord, model: bytes, model_hash: bytes) -> bytes:
        from peer.training import train_local

        t = Timer()
        global_state = consensus.decode(model)
        tc, pc = self.cfg.training, self.cfg.privacy
        dp = None
        if pc.enabled:
            from peer.privacy import DPConfig

            dp = DPConfig(noise_multiplier=pc.noise_multiplier, max_grad_norm=pc.clip_norm, delta=pc.delta)
        history = [tuple(x) for x in self.state.meta.get("privacy_history", [])]
        result = train_local(
            self.task, global_state, self.training_data(), epochs=tc.local_epochs, batch_size=tc.batch_size,
            lr=tc.lr, momentum=tc.momentum, prox_mu=tc.mu if tc.algorithm == "fedprox" else 0.0, dp=dp,
            prior_privacy=history, seed=tc.seed * 1_000_003 + r,
        )
        delta_state = result.update(global_state)
        update = self._encode(self._poison(r, delta_state))
        train_s = t.elapsed
        self.state.write_artefact(r, "update.bin", update)
        self.state.meta["privacy_history"] = [list(x) for x in result.privacy_history]
        rec.timings["train"] = train_s
        self.state.advance(
            rec, Phase.TRAINED, model_hash=model_hash.hex(), update_hash=hashlib.sha256(update).hexdigest(),
            num_samples=result.num_samples, epsilon=None if math.isinf(result.epsilon) else result.epsilon,
            delta=result.delta,
        )
        self.nlog.event(r, "train", "done", elapsed=train_s, loss=round_(result.train_loss, 4),
                        samples=result.num_samples,
                        epsilon=None if math.isinf(result.epsilon) else round_(result.epsilon, 3))
        return update

    def _encode(self, tensors) -> bytes:
        if isinstance(tensors, (bytes, bytearray)):
            return bytes(tensors)  # an adversary may hand over raw (garbage) bytes
        return consensus.encode(tensors, scale_bits=self.params.scale_bits)

    # --- opt-in Byzantine behaviours (peer.adversary); an honest node has adversary=None

    def _poison(self, r: int, update):
        adv = self.adversary
        if adv is None:
            return update
        if adv.sends_garbage:
            return adv.garbage_blob(round=r)
        if not adv.poisons_update:
            return update
        n, f = len(self._members), self.params.f
        others = self._visible_updates(r) if adv.attack.needs_other_updates else []
        try:
            poisoned = adv.poison_update(update, round=r, honest=others, n=n, f=f)
        except ValueError:
            # ALIE without any other update in sight: estimate the spread from our own update.
            estimate = (update, {k: v.abs() for k, v in update.items()})
            poisoned = adv.attack.apply(update, estimate=estimate, n=n, f=f, **dict(adv.params))
        self.nlog.event(r, "attack", adv.attack.value, message=f"poisoned update ({len(others)} others seen)")
        return poisoned

    def _visible_updates(self, r: int, timeout: float = 8.0) -> list:
        """Other members' round-r updates this (Byzantine) node can unseal from gossip: a rushing attacker."""
        if self.gossip is None:
            return []
        others = len(self._members) - 1
        info = self.chain.round_info(r)
        timeout = max(0.0, min(timeout, info.commit_deadline - time.time() - self.cfg.commit_margin - 3))

        def senders() -> set[str]:
            return {e.sender for e in self.gossip.envelopes(r) if e.sender != self.me
                    and self.gossip.blob(e.update_hash) is not None}

        self.gossip.wait_for(lambda: len(senders()) >= others, timeout)
        seen = []
        for env in self.gossip.envelopes(r):
            if env.sender == self.me:
                continue
            blob = self.gossip.blob(env.update_hash)
            try:
                seen.append(consensus.decode(self.unseal(blob, env.sender, r)))
            except Exception:
                continue
        return seen

    def _recipients(self) -> dict[str, bytes]:
        return {**self._auditors, **self._members}

    def _seal(self, r: int, update: bytes) -> bytes:
        from peer.seal import seal

        return seal(update, self._recipients(), federation=self.chain.address, round=r, sender=self.me)

    def unseal(self, sealed: bytes, sender: str, r: int) -> bytes:
        from peer.seal import unseal

        return unseal(sealed, self.me, self.identity.enc_private_key,
                      federation=self.chain.address, round=r, sender=sender)

    def _gossip_publish(self, r: int, rec: RoundRecord, update_hash: bytes, cid: str, sealed: bytes) -> None:
        if self.gossip is None:
            return
        from peer.envelope import Envelope
        from peer.seal import parse_header

        t = Timer()
        try:
            header_len = parse_header(sealed).header_len
        except Exception:  # a garbage blob (attack) has no seal header
            header_len = 0
        blob = sealed
        if self.adversary is not None and self.adversary.equivocates:
            # Gossip a different (plausible) update than the one committed.
            try:
                other = self._encode(self.adversary.equivocation_update(
                    consensus.decode(self.state.read_artefact(r, "update.bin")), round=r))
                blob, update_hash = self._seal(r, other), hashlib.sha256(other).digest()
                self.nlog.event(r, "attack", "equivocate", message="gossiping a different update than committed")
            except Exception as exc:
                log.warning("equivocation failed: %s", exc)
        try:
            envelope = Envelope.create(
                self.identity.account, federation=self.chain.address, chain_id=self.chain.chain_id, round=r,
                update_hash=update_hash, cid=cid, wrapped_keys=sealed[:min(header_len, 60_000)],
                blob_sha256=hashlib.sha256(blob).digest(), blob_size=len(blob),
            )
            self.gossip.publish_envelope(envelope)
            chunks = self.gossip.publish_blob(envelope, blob, self.identity.account)
        except Exception as exc:  # gossip is an optimisation; IPFS + chain remain the source of truth
            self.nlog.event(r, "gossip", "failed", level="warning", elapsed=t.elapsed, message=str(exc))
            return
        rec.timings["gossip"] = t.elapsed
        self.nlog.event(r, "gossip", "published", elapsed=t.elapsed, chunks=chunks,
                        peers=len(self.gossip.peers()) if hasattr(self.gossip, "peers") else None)

    # ------------------------------------------------------------------ step 6: wait for the commit phase end

    def _wait_commit_phase_end(self, r: int) -> None:
        t = Timer()
        announced = False
        while not self._stop:
            ph = self.round_phase(r)
            if ph != PHASE_COMMIT:
                break
            if not announced:
                self.nlog.event(r, "wait", "commits", message="waiting for the commit phase to end")
                announced = True
            self.sleep(self.cfg.poll_interval)
        if announced:
            self.nlog.event(r, "wait", "done", elapsed=t.elapsed)

    # ------------------------------------------------------------------ steps 6-8: collect, aggregate, vote

    def _vote_part(self, r: int, rec: RoundRecord, model: bytes) -> None:
        if self.retry("read vote", lambda: self.chain.has_voted(r, self.me), round=r):
            self.state.advance(rec, Phase.VOTED)
            self.nlog.event(r, "vote", "recovered", message="vote already on chain")
            return
        if self.adversary is not None and self.adversary.silent:
            self.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + ["silent (attack)"])
            return
        ph = self.round_phase(r)
        if ph != PHASE_VOTE:
            self.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + [f"vote window not open (phase {ph})"])
            self.nlog.event(r, "vote", "skipped", level="warning", message=f"vote window not open (phase {ph})")
            return

        # collect
        t = Timer()
        raw = self.retry("read commitments", lambda: self.chain.commitments(r), round=r)
        commitments = [Commitment(c.peer, c.update_hash, c.cid, c.num_samples) for c in raw]
        own = self.state.read_artefact(r, "update.bin")
        updates, report = collect_updates(
            r, commitments, unseal=self.unseal, blobstore=self.blobstore, gossip=self.gossip,
            local={self.me: own} if own is not None else None, gossip_wait=self.cfg.gossip_wait,
        )
        rec.timings["collect"] = t.elapsed
        self.nlog.event(r, "collect", "done", elapsed=t.elapsed,
                        message=f"{len(commitments)} commitments: {report.from_gossip} gossip, "
                                f"{report.from_ipfs} ipfs, {len(report.rejected)} invalid",
                        rejected={k[:10]: v[:80] for k, v in report.rejected.items()} or None)
        self.state.advance(rec, Phase.COLLECTED)

        # aggregate
        p = self.params
        t = Timer()
        try:
            outcome = compute_round_outcome(
                round=r, previous_model=model, updates=updates, rule=p.rule, rule_param=p.rule_param, f=p.f,
                reward_pool=self.retry("read reward pool", self.chain.reward_pool, round=r),
                sample_cap=p.sample_cap, scale_bits=p.scale_bits,
            )
        except RoundNotAggregatable as exc:
            self.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + [str(exc)])
            self.nlog.event(r, "aggregate", "abstain", level="warning", elapsed=t.elapsed, message=str(exc))
            return
        rec.timings["aggregate"] = t.elapsed
        self.cache_model(outcome.new_model)
        self.nlog.event(r, "aggregate", "done", elapsed=t.elapsed, rule=p.rule,
                        excluded=[a for a in outcome.excluded] or None,
                        digest="0x" + outcome.digest.hex())

        # publish new model + reward tree, then vote
        t = Timer()
        model_cid = self.retry("ipfs add model", lambda: self.blobstore.add(outcome.new_model), round=r)
        tree_json = outcome.reward_tree.to_json()
        tree_bytes = tree_json.encode() if isinstance(tree_json, str) else bytes(tree_json)
        rewards_cid = self.retry("ipfs add rewards", lambda: self.blobstore.add(tree_bytes), round=r)
        rec.timings["ipfs_results"] = t.elapsed

        aggregate_hash, rewards_root, excluded = outcome.aggregate_hash, outcome.rewards_root, list(outcome.excluded)
        if self.adversary is not None and self.adversary.votes_wrong:
            # The contract recomputes the digest from the arguments, so a wrong vote lies about the aggregate.
            aggregate_hash = self.adversary.vote_digest(aggregate_hash, round=r)
            self.nlog.event(r, "attack", "wrong_vote", message="voting a wrong aggregate hash")
        excluded = sorted(excluded, key=lambda a: int(a, 16))
        digest = consensus.vote_digest(aggregate_hash, rewards_root, excluded)
        self.state.update(rec, digest=digest.hex(), aggregate_hash=aggregate_hash.hex(), aggregate_cid=model_cid,
                          rewards_cid=rewards_cid, excluded=excluded)
        if self.retry("read vote", lambda: self.chain.has_voted(r, self.me), round=r):
            self.state.advance(rec, Phase.VOTED)
            return
        t = Timer()
        receipt = None
        for _ in range(30):
            try:
                receipt = self.retry("vote tx", lambda: self.chain.vote(
                    r, digest, aggregate_hash, model_cid, rewards_root, rewards_cid, excluded), round=r)
                break
            except Stopped:
                raise
            except Exception as exc:
                kind = self.chain.classify_error(exc)
                if kind == "too_early":
                    self.sleep(1.0)  # the chain's clock lags ours
                    continue
                if kind == "already":
                    self.state.advance(rec, Phase.VOTED)
                    return
                if kind in ("closed", "not_open"):
                    late = kind == "not_open"
                    self.state.advance(rec, Phase.ABSTAINED, notes=rec.notes + ["vote too late" if late else "vote window closed"])
                    self.nlog.event(r, "vote", "late" if late else "closed", level="info" if late else "warning",
                                    message="round already settled by the others' votes" if late else "vote window closed")
                    return
                raise
        if receipt is None:
            raise NodeError(f"round {r}: the chain kept refusing the vote as too early")
        rec.timings["chain_vote"] = t.elapsed
        self.state.advance(rec, Phase.VOTED, vote_tx=receipt.tx_hash, vote_gas=receipt.gas_used)
        self.nlog.event(r, "vote", "mined", elapsed=t.elapsed, gas=receipt.gas_used, tx=receipt.tx_hash,
                        digest="0x" + digest.hex())

    # ------------------------------------------------------------------ step 8-9: finalization

    def _await_settled(self, r: int, rec: RoundRecord) -> None:
        t = Timer()
        while not self._stop:
            ph = self.round_phase(r)
            if ph == PHASE_FINALIZED:
                fin = self.retry("read finalization", lambda: self.chain.finalization(r), round=r)
                accuracy = None
                if fin is not None:
                    try:
                        model, _ = self.global_model(r + 1)
                        accuracy = self.evaluate(model)
                    except Exception as exc:
                        self.nlog.event(r, "model", "unavailable", level="warning", message=str(exc))
                agreed = fin is not None and rec.digest is not None and fin.digest.hex() == rec.digest
                self.state.advance(rec, Phase.FINALIZED, accuracy=accuracy)
                self.nlog.event(r, "finalized", "done", elapsed=t.elapsed, accuracy=accuracy,
                                agreed=agreed if rec.digest else None,
                                excluded=list(fin.excluded) if fin is not None and fin.excluded else None)
                return
            if ph == PHASE_FAILED:
                self.state.advance(rec, Phase.FAILED)
                self.nlog.event(r, "failed", "done", level="warning", elapsed=t.elapsed,
                                message="round closed without a majority; the model stays")
                return
            if ph == PHASE_EXPIRED:
                try:
                    receipt = self.retry("closeFailedRound tx", lambda: self.chain.close_failed_round(r), round=r)
                    self.state.update(rec, close_tx=receipt.tx_hash)
                    self.nlog.event(r, "close", "mined", gas=receipt.gas_used, tx=receipt.tx_hash)
                except Stopped:
                    raise
                except Exception as exc:
                    kind = self.chain.classify_error(exc)
                    if kind == "too_early":
                        self.sleep(1.0)
                    elif kind not in ("not_open", "closed"):
                        raise
                continue
            if ph in (PHASE_NONE,):
                raise NodeError(f"round {r} is not open on chain")
            self.sleep(self.cfg.poll_interval)

    def _settle_earlier(self, r: int) -> None:
        """Rounds this node left before they settled (crash, error, late vote): record how they ended."""
        for rec in list(self.state):
            if rec.round >= r or rec.phase.settled:
                continue
            ph = self.round_phase(rec.round)
            if ph in (PHASE_FINALIZED, PHASE_FAILED):
                self.state.advance(rec, Phase.FINALIZED if ph == PHASE_FINALIZED else Phase.FAILED)
                self.nlog.event(rec.round, "finalized" if ph == PHASE_FINALIZED else "failed", "recorded",
                                message="settled while this node was busy or away")

    def _wait_round_closed(self, r: int) -> None:
        while not self._stop and self.retry("read current round", self.chain.current_round) <= r:
            self.sleep(self.cfg.poll_interval)


def _privacy_to_chain(epsilon: float | None, delta: float | None) -> tuple[int, int]:
    from peer.privacy import privacy_to_chain

    if epsilon is None:
        return UINT64_MAX, 0
    return privacy_to_chain(epsilon, delta or 0.0)


def gossip_seed(state_dir: str | os.PathLike) -> bytes:
    """The node's libp2p key seed (32 bytes), created once in the state dir: a stable peer id across restarts."""
    path = Path(state_dir) / "node" / "gossip.key"
    try:
        seed = bytes.fromhex(path.read_text().strip())
        if len(seed) == 32:
            return seed
    except FileNotFoundError:
        pass
    seed = secrets.token_bytes(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, seed.hex().encode())
    os.chmod(path, 0o600)
    return seed


def gossip_peer_id(seed: bytes) -> str:
    from libp2p.crypto.ed25519 import create_new_key_pair
    from libp2p.peer.id import ID

    return str(ID.from_pubkey(create_new_key_pair(seed).public_key))


# --------------------------------------------------------------------------------------------------
# The node's view of the ledger contract (web3); every value in the protocol's words.


@dataclass(frozen=True)
class FederationParams:
    rule: str
    rule_param: int
    f: int
    quorum_bps: int
    commit_period: int
    vote_period: int
    reward_per_round: int
    model_spec_hash: bytes
    genesis_model_hash: bytes
    genesis_model_cid: str
    scale_bits: int
    alpha_bps: int
    sample_cap: int


@dataclass(frozen=True)
class RoundInfo:
    status: int
    start: int
    commit_deadline: int
    vote_deadline: int
    commit_count: int


@dataclass(frozen=True)
class ChainCommitment:
    peer: str
    update_hash: bytes
    cid: str
    num_samples: int
    epsilon_e6: int
    delta_e18: int


@dataclass(frozen=True)
class Finalization:
    round: int
    digest: bytes
    aggregate_hash: bytes
    aggregate_cid: str
    rewards_root: bytes
    rewards_cid: str
    excluded: tuple[str, ...]


@dataclass(frozen=True)
class TxReceipt:
    tx_hash: str
    gas_used: int
    block: int


# custom errors of FederationLedger that the round loop reacts to
_ERROR_KINDS = {
    "AlreadyCommitted(uint256,address)": "already",
    "AlreadyVoted(uint256,address)": "already",
    "CommitClosed(uint256)": "closed",
    "VotingClosed(uint256)": "closed",
    "RoundNotOpen(uint256)": "not_open",
    "VotingNotOpen(uint256)": "too_early",
    "VoteDeadlineNotReached(uint256,uint256)": "too_early",
}


class ChainPort:
    """Reads, transactions and event queries of one FederationLedger, for one member's account."""

    def __init__(self, rpc_url: str, address: str, account=None, *, abi: list | None = None,
                 from_block: int = 0, tx_timeout: float = 60.0) -> None:
        from eth_utils import keccak, to_checksum_address
        from web3 import Web3

        if abi is None:
            from devnet.compile import load_contract

            abi = load_contract("FederationLedger").abi
        self.w3 = Web3(Web3.HTTPProvider(rpc_url, request_kwargs={"timeout": 30}))
        self.address = to_checksum_address(address)
        self.contract = self.w3.eth.contract(address=self.address, abi=abi)
        self.account = account
        self.from_block = from_block
        self.tx_timeout = tx_timeout
        self._chain_id: int | None = None
        self._selectors = {"0x" + keccak(text=sig)[:4].hex(): kind for sig, kind in _ERROR_KINDS.items()}

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self.w3.eth.chain_id)
        return self._chain_id

    # --- reads
    def params(self) -> FederationParams:
        p = self.contract.functions.parameters().call()
        return FederationParams(
            rule=p[0], rule_param=int(p[1]), f=int(p[2]), quorum_bps=int(p[3]), commit_period=int(p[4]),
            vote_period=int(p[5]), reward_per_round=int(p[6]), model_spec_hash=bytes(p[7]),
            genesis_model_hash=bytes(p[8]), genesis_model_cid=p[9], scale_bits=int(p[10]), alpha_bps=int(p[11]),
            sample_cap=int(p[12]),
        )

    def current_round(self) -> int:
        return int(self.contract.functions.currentRound().call())

    def phase(self, r: int) -> int:
        return int(self.contract.functions.phase(r).call())

    def round_info(self, r: int) -> RoundInfo:
        x = self.contract.functions.roundInfo(r).call()
        return RoundInfo(status=int(x[0]), start=int(x[1]), commit_deadline=int(x[2]), vote_deadline=int(x[3]),
                         commit_count=int(x[4]))

    def model(self) -> tuple[bytes, int]:
        h, r = self.contract.functions.model().call()
        return bytes(h), int(r)

    def model_cid(self, model_round: int) -> str:
        if model_round == 0:
            return self.params().genesis_model_cid
        fin = self.finalization(model_round)
        if fin is None:
            raise LookupError(f"no RoundFinalized event for round {model_round}")
        return fin.aggregate_cid

    def member_keys(self) -> dict[str, bytes]:
        members = self.contract.functions.members().call()
        return {m: bytes(self.contract.functions.memberKey(m).call()) for m in members}

    def auditor_keys(self) -> dict[str, bytes]:
        auditors = self.contract.functions.auditors().call()
        return {a: bytes(self.contract.functions.auditorKey(a).call()) for a in auditors}

    def member_info(self, who: str) -> tuple:
        return tuple(self.contract.functions.memberInfo(who).call())

    def has_voted(self, r: int, who: str) -> bool:
        return int(self.member_info(who)[4]) == r

    def has_committed(self, r: int, who: str) -> bool:
        return int(self.member_info(who)[3]) == r

    def reward_pool(self) -> int:
        """What finalization would reserve now: min(rewardPerRound, balance − reserved)."""
        balance = int(self.w3.eth.get_balance(self.address))
        reserved = int(self.contract.functions.reserved().call())
        return max(0, min(int(self.contract.functions.rewardPerRound().call()), balance - reserved))

    # --- events
    def commitments(self, r: int) -> list[ChainCommitment]:
        logs = self.contract.events.Committed.get_logs(from_block=self.from_block, argument_filters={"round": r})
        out = {}
        for ev in logs:
            a = ev["args"]
            out[a["member"]] = ChainCommitment(a["member"], bytes(a["updateHash"]), a["cid"], int(a["numSamples"]),
                                               int(a["epsilonE6"]), int(a["deltaE18"]))
        return sorted(out.values(), key=lambda c: int(c.peer, 16))

    def finalization(self, r: int) -> Finalization | None:
        logs = self.contract.events.RoundFinalized.get_logs(from_block=self.from_block,
                                                            argument_filters={"round": r})
        if not logs:
            return None
        a = logs[-1]["args"]
        return Finalization(r, bytes(a["digest"]), bytes(a["aggregateHash"]), a["aggregateCid"],
                            bytes(a["rewardsRoot"]), a["rewardsCid"], tuple(a["excluded"]))

    def votes(self, r: int) -> dict[str, bytes]:
        logs = self.contract.events.Voted.get_logs(from_block=self.from_block, argument_filters={"round": r})
        return {ev["args"]["member"]: bytes(ev["args"]["digest"]) for ev in logs}

    # --- transactions
    def _send(self, fn, *, time_gas: int | None = None) -> TxReceipt:
        """Sign, send, wait. `time_gas`: for transactions that only become valid with time (vote after the
        commit deadline, closeFailedRound after the vote deadline): when gas estimation — run against the
        latest block, whose timestamp lags on a chain that mines on demand — says "too early", send anyway
        with this gas limit; the new block carries the current time."""
        if self.account is None:
            raise RuntimeError("read-only ChainPort: no account")
        base = {
            "from": self.account.address,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.chain_id,
        }
        try:
            tx = fn.build_transaction(base)
        except Exception as exc:
            if time_gas is None or self.classify_error(exc) != "too_early":
                raise
            tx = fn.build_transaction({**base, "gas": time_gas})
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, timeout=self.tx_timeout, poll_latency=0.1)
        if int(receipt["status"]) != 1:
            # Mined but reverted (state changed between estimate and inclusion, e.g. the round finalized):
            # replay as a call to surface the contract's custom error for classify_error.
            fn.call({"from": self.account.address})
            raise RuntimeError(f"transaction {tx_hash.hex()} reverted")
        return TxReceipt("0x" + bytes(tx_hash).hex().removeprefix("0x"), int(receipt["gasUsed"]),
                         int(receipt["blockNumber"]))

    def commit(self, r: int, update_hash: bytes, cid: str, num_samples: int, eps_e6: int, delta_e18: int) -> TxReceipt:
        return self._send(self.contract.functions.commit(r, update_hash, cid, num_samples, eps_e6, delta_e18))

    def vote(self, r: int, digest: bytes, aggregate_hash: bytes, aggregate_cid: str, rewards_root: bytes,
             rewards_cid: str, excluded: list[str]) -> TxReceipt:
        return self._send(self.contract.functions.vote(r, digest, aggregate_hash, aggregate_cid, rewards_root,
                                                       rewards_cid, list(excluded)),
                          time_gas=400_000 + 10_000 * len(excluded))

    def close_failed_round(self, r: int) -> TxReceipt:
        return self._send(self.contract.functions.closeFailedRound(r), time_gas=200_000)

    def classify_error(self, exc: BaseException) -> str | None:
        """'already' | 'closed' | 'not_open' | 'too_early' for the contract's custom errors, else None."""
        text = " ".join(str(x) for x in (getattr(exc, "data", ""), getattr(exc, "message", ""), exc))
        for selector, kind in self._selectors.items():
            if selector in text:
                return kind
        return None
