"""In-process federation engine: many peers in one process, the protocol's own consensus code.

Every round runs the protocol's steps for every simulated peer — local training, canonical encoding,
(sealing, IPFS, on-chain commitment when a ledger is attached), exact robust aggregation through
`ledger_tools.round_outcome.compute_round_outcome` (the very function real peers and auditors use), and
the vote. Only the transport differs from a real deployment: peers hand each other blobs in memory
instead of over libp2p gossip.

Two transports:

* `LocalTransport` (ledger-free): blobs stay in memory, nothing is sealed or committed. The robustness
  bench uses it; the model trajectory is bit-identical to the ledger mode's for the same seed.
* `fedledger.sim_ledger.ChainTransport`: the real contract on a devnet and a real IPFS node (see there).

Determinism: every random choice derives from `SimConfig.seed` (peer keys, data split, training seeds,
attack noise), training runs single-threaded, and aggregation is exact integer arithmetic, so the same
config gives the same final model bytes (hash) on the same machine.
"""
from __future__ import annotations

import hashlib
import math
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from typing import Iterator, Mapping, Protocol, Sequence

import numpy as np
import torch

import consensus
from ledger_tools.round_outcome import (
    CommittedUpdate,
    RoundNotAggregatable,
    RoundOutcome,
    canonical_order,
    compute_round_outcome,
)
from peer import adversary
from peer.partition import partition
from peer.tasks import DigitsTask, StateDict, Task, TaskData, get_task
from peer.training import train_local

ATTACKS = ("none", "sign_flip", "gaussian", "scaled", "label_flip", "alie", "ipm")
RULES = ("fedavg", "krum", "multi_krum", "trimmed_mean", "median", "bulyan", "nnm+trimmed_mean")
PHASES = ("train", "encode", "seal", "ipfs", "chain", "aggregate", "vote")

#: Attack strengths (documented in docs/robustness.md). Sign flip and scaling are amplified: a plain
#: −1× update from 20 % of peers only slows FedAvg down, the amplified ones are the classic breaking attacks.
SIGN_FLIP_FACTOR = 4.0
SCALE_FACTOR = 20.0
GAUSSIAN_STD = 1.0
IPM_EPSILON = 0.1


class SimError(Exception):
    """A simulation cannot be configured or run (bad flags, too many Byzantine peers for the rule, ...)."""


@dataclass(frozen=True)
class SimConfig:
    """One simulated federation. `alpha=None` means an IID split; `f=None` means f = number of Byzantine peers."""

    task: str = "digits"
    peers: int = 20
    byzantine: int = 0
    attack: str = "none"
    rule: str = "fedavg"
    f: int | None = None
    rounds: int = 10
    alpha: float | None = 1.0
    local_epochs: int = 1
    batch_size: int = 16
    lr: float = 0.05
    momentum: float = 0.9
    hidden: int | None = None          # digits only: MLP width (64 default; ~1000 gives a ~1M-param model)
    scale_bits: int = 20
    batched_training: bool = False     # vectorised equivalent of train_local (ledger-free benches)
    reward_per_round: int = 10**18
    seed: int = 0

    def __post_init__(self) -> None:
        if self.attack not in ATTACKS:
            raise SimError(f"unknown attack {self.attack!r}; expected one of {', '.join(ATTACKS)}")
        if self.peers < 2:
            raise SimError("a federation needs at least 2 peers")
        if not 0 <= self.byzantine < self.peers:
            raise SimError(f"byzantine must be in [0, peers); got {self.byzantine} of {self.peers}")
        if self.byzantine and self.attack == "none":
            raise SimError("Byzantine peers need an attack (--attack)")
        if self.rounds < 1:
            raise SimError("rounds must be >= 1")

    @property
    def effective_f(self) -> int:
        return self.byzantine if self.f is None else self.f

    def build_task(self) -> Task:
        if self.hidden is not None:
            if self.task != "digits":
                raise SimError("--hidden applies to the digits task only")
            return DigitsTask(hidden=self.hidden)
        return get_task(self.task)


@dataclass
class SimPeer:
    index: int
    address: str
    private_key: bytes
    data: TaskData
    byzantine: bool
    attack: str


@dataclass
class RoundRecord:
    round: int
    accuracy: float
    loss: float
    finalized: bool
    aggregate_hash: str
    excluded: list[str]
    excluded_byzantine: int
    excluded_honest: int
    rejected_byzantine: int          # Byzantine peers excluded or given score 0 by the rule (not rewarded)
    rejected_honest: int
    phase_seconds: dict[str, float]
    wall_seconds: float
    gas_used: int = 0
    votes: int = 0


@dataclass
class SimResult:
    config: dict
    peers: list[dict]
    rounds: list[RoundRecord] = field(default_factory=list)
    genesis_accuracy: float = float("nan")
    final_model_hash: str = ""
    ledger: dict = field(default_factory=dict)

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy if self.rounds else self.genesis_accuracy

    def to_json(self) -> dict:
        return {
            "config": self.config,
            "peers": self.peers,
            "genesis_accuracy": self.genesis_accuracy,
            "final_accuracy": self.final_accuracy,
            "final_model_hash": self.final_model_hash,
            "ledger": self.ledger,
            "rounds": [asdict(r) for r in self.rounds],
        }


class PhaseClock:
    """Wall time per protocol phase, accumulated over one round."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] += time.perf_counter() - started

    def snapshot(self) -> dict[str, float]:
        return {p: round(self.seconds.get(p, 0.0), 6) for p in PHASES}


class Transport(Protocol):
    """How updates travel and how the round's outcome becomes final (in memory, or chain + IPFS)."""

    def start(self, engine: "SimEngine", genesis_model: bytes) -> None: ...

    def publish(self, round: int, blobs: Mapping[str, tuple[bytes, int]], clock: PhaseClock) -> list[CommittedUpdate]:
        """Make each peer's canonical update available and committed; return the round's commitments
        as an honest peer sees them (canonical update bytes fetched, checked and unsealed)."""
        ...

    def finalize(self, round: int, outcome: RoundOutcome | None, clock: PhaseClock) -> tuple[bool, int, int]:
        """Votes of every peer; returns (finalized, gas used this round, number of votes)."""
        ...

    def close(self) -> None: ...


class LocalTransport:
    """Ledger-free transport: blobs are handed over in memory; the honest majority's outcome is final."""

    def start(self, engine: "SimEngine", genesis_model: bytes) -> None:
        self.engine = engine

    def publish(self, round: int, blobs: Mapping[str, tuple[bytes, int]], clock: PhaseClock) -> list[CommittedUpdate]:
        return [
            CommittedUpdate(peer=p, update_hash=consensus.update_hash(b), num_samples=n, update=b)
            for p, (b, n) in blobs.items()
        ]

    def finalize(self, round: int, outcome: RoundOutcome | None, clock: PhaseClock) -> tuple[bool, int, int]:
        with clock.phase("vote"):
            if outcome is None:
                return False, 0, 0
            honest = [p for p in self.engine.peers if not p.byzantine]
            digests = [outcome.digest for _ in honest]  # every honest peer derives the same digest
            return len(digests) * 2 > len(self.engine.peers), 0, len(digests)

    def close(self) -> None:
        pass


class ChainTransport:
    """The real ledger: the FederationLedger contract on an Ethereum devnet, sealed blobs on a real IPFS node.

    Per round: every peer seals its canonical update for all members (AES-256-GCM + X25519 key wraps), adds the
    sealed blob to IPFS and commits (round, update hash, CID) on chain; an honest observer reads the round's
    commitments from the chain, fetches each blob (IPFS, or the in-memory gossip cache with `gossip=True`),
    unseals and checks it; after aggregation the new model and the reward tree go to IPFS and the peers vote
    until the contract finalizes the round. Byzantine peers vote a wrong digest.

    The observer fetches + unseals the other peers' blobs on `peer.collect.FETCH_THREADS` threads, as a real
    peer does, and starts each fetch as soon as that peer's commitment is on chain (while the other peers are
    still sealing and committing). Its own update it already holds.

    `detail=True` (bench/overhead) runs the peers' seal/add/commit one after another, so each step's time is
    clean, records them per peer in `detail[round]`, and measures the observer's collection twice after the
    commit phase, without overlap: every blob from IPFS (`collect_ipfs`) and every blob from gossip copies
    (`collect_gossip`: unseal only, the transfer being the gossip exchange). The second measurement's time
    is kept out of the round's wall time (`bench_only_seconds`).

    `rpc_url` must be a devnet that supports `anvil_setBalance` (peer accounts are funded that way).
    """

    def __init__(self, rpc_url: str, ipfs_api_url: str, *, deployer_key: str | None = None,
                 commit_period: int = 3600, vote_period: int = 3600, gossip: bool = False,
                 threads: int = 4, detail: bool = False) -> None:
        self.rpc_url, self.ipfs_api_url = rpc_url, ipfs_api_url
        self.deployer_key = deployer_key
        self.commit_period, self.vote_period = commit_period, vote_period
        self.gossip = gossip
        self.threads = max(1, threads)
        self.gas_by_round: dict[int, int] = {}
        self.threads = 1 if detail else self.threads  # per-step timings need the steps not to overlap
        self.measure_detail = detail
        self.detail: dict[int, dict] = {}
        self.bench_only_seconds: dict[int, float] = {}
        self._gossip_cache: dict[str, bytes] = {}

    def start(self, engine: "SimEngine", genesis_model: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from devnet.anvil import dev_accounts, set_balance
        from devnet.compile import load_contract
        from ledger_tools.blobstore import IpfsBlobStore
        from ledger_tools.chain import FederationLedger, LedgerParams, MemberInit

        self.engine = engine
        cfg = engine.config
        self.store = IpfsBlobStore(self.ipfs_api_url)
        self.enc_keys = {
            p.address: X25519PrivateKey.from_private_bytes(hashlib.sha256(b"x25519" + p.private_key).digest())
            for p in engine.peers
        }
        self.enc_public = {a: k.public_key() for a, k in self.enc_keys.items()}
        from cryptography.hazmat.primitives import serialization

        raw = {a: k.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
               for a, k in self.enc_public.items()}
        for p in engine.peers:
            set_balance(self.rpc_url, p.address, 10**21)
        genesis_cid = self.store.add(genesis_model)
        params = LedgerParams(
            rule=cfg.rule, rule_param=0, f=clamp_f(cfg.rule, cfg.peers, cfg.effective_f), quorum_bps=5000,
            commit_period=self.commit_period, vote_period=self.vote_period,
            reward_per_round_wei=cfg.reward_per_round, model_spec_hash=engine.spec.spec_hash(),
            genesis_model_hash=consensus.update_hash(genesis_model), genesis_model_cid=genesis_cid,
            scale_bits=cfg.scale_bits, alpha_bps=1000, sample_cap=0,
        )
        artifact = load_contract("FederationLedger")
        deployer = self.deployer_key or dev_accounts()[0].private_key
        started = time.perf_counter()
        self.ledger = FederationLedger.deploy(
            self.rpc_url, deployer, params, [MemberInit(p.address, raw[p.address]) for p in engine.peers],
            funding_wei=cfg.reward_per_round * cfg.rounds, abi=artifact.abi, bytecode=artifact.bytecode,
        )
        self.deploy_seconds = time.perf_counter() - started
        self.deploy_gas = self.ledger.deploy_receipt.gas_used
        self.bindings = {p.address: self.ledger.with_account("0x" + p.private_key.hex()) for p in engine.peers}
        self.observer = next(p for p in engine.peers if not p.byzantine)

    def _seal_add_commit(self, round: int, address: str, blob: bytes,
                         samples: int) -> tuple[float, float, float, int, str]:
        from peer.seal import seal

        t0 = time.perf_counter()
        sealed = seal(blob, self.enc_public, federation=self.ledger.address, round=round, sender=address)
        t1 = time.perf_counter()
        cid = self.store.add(sealed)
        self._gossip_cache[cid] = sealed
        t2 = time.perf_counter()
        receipt = self.bindings[address].commit(round, consensus.update_hash(blob), cid, samples)
        return t1 - t0, t2 - t1, time.perf_counter() - t2, receipt.gas_used, cid

    def _fetch_unseal(self, round: int, sender: str, cid: str, *, gossip: bool) -> tuple[bytes | None, float, float]:
        """The observer's work for one committed blob: (update or None, fetch seconds, unseal seconds)."""
        from peer.seal import SealError, unseal

        t0 = time.perf_counter()
        try:
            sealed = self._gossip_cache[cid] if gossip and cid in self._gossip_cache else self.store.cat(cid)
        except Exception:  # noqa: BLE001 - an unavailable blob is an excluded contribution
            return None, time.perf_counter() - t0, 0.0
        t1 = time.perf_counter()
        me = self.observer.address
        try:
            update = unseal(sealed, me, self.enc_keys[me], federation=self.ledger.address, round=round, sender=sender)
        except SealError:
            update = None
        return update, t1 - t0, time.perf_counter() - t1

    def _collect(self, round: int, commitments, own: bytes | None, pool, started: Mapping[str, object], *,
                 gossip: bool) -> tuple[list[CommittedUpdate], float, float, float]:
        """Every commitment's update as the observer gets it (jobs already `started` are reused);
        returns (updates, wall seconds, summed fetch seconds, summed unseal seconds)."""
        t0 = time.perf_counter()
        me = self.observer.address
        jobs = {}
        for c in commitments:
            if c.member == me and own is not None and consensus.update_hash(own) == c.update_hash:
                continue
            job = started.get(c.member)
            if job is None or job[0] != c.cid:
                job = (c.cid, pool.submit(self._fetch_unseal, round, c.member, c.cid, gossip=gossip))
            jobs[c.member] = job[1]
        out, fetch, unseal = [], 0.0, 0.0
        for c in commitments:
            if c.member in jobs:
                update, f, u = jobs[c.member].result()
                fetch, unseal = fetch + f, unseal + u
            else:
                update = own
            out.append(CommittedUpdate(peer=c.member, update_hash=c.update_hash, num_samples=c.num_samples,
                                       update=update))
        return out, time.perf_counter() - t0, fetch, unseal

    def publish(self, round: int, blobs: Mapping[str, tuple[bytes, int]], clock: PhaseClock) -> list[CommittedUpdate]:
        from concurrent.futures import ThreadPoolExecutor

        from devnet.anvil import increase_time
        from peer.collect import FETCH_THREADS

        me = self.observer.address
        prefetch = not self.measure_detail
        started_jobs: dict[str, tuple[str, object]] = {}
        with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="observer-fetch") as fetch_pool:

            def peer_publishes(item) -> tuple[float, float, float, int, str]:
                address, (blob, samples) = item
                part = self._seal_add_commit(round, address, blob, samples)
                if prefetch and address != me:  # the commitment is on chain: the observer starts fetching
                    started_jobs[address] = (part[4], fetch_pool.submit(
                        self._fetch_unseal, round, address, part[4], gossip=self.gossip))
                return part

            t_publish = time.perf_counter()
            # Peers work in parallel in a real federation; here threads overlap their I/O waits. Phase times
            # are the per-peer sums scaled to the wall time this step really took.
            with ThreadPoolExecutor(self.threads) as pool:
                parts = list(pool.map(peer_publishes, blobs.items()))
            wall = time.perf_counter() - t_publish
            total = sum(a + b + c for a, b, c, _, _ in parts) or 1.0
            for i, phase in enumerate(("seal", "ipfs", "chain")):
                clock.seconds[phase] += wall * sum(p[i] for p in parts) / total
            gas = sum(p[3] for p in parts)
            t_read = time.perf_counter()
            with clock.phase("chain"):
                if len(blobs) < len(self.engine.peers):
                    increase_time(self.rpc_url, self.commit_period)  # the commit deadline must pass
                commitments = self.ledger.commitments(round)
            read_seconds = time.perf_counter() - t_read
            own = blobs.get(me, (None, 0))[0]
            out, collect_wall, fetch, unseal = self._collect(round, commitments, own, fetch_pool, started_jobs,
                                                             gossip=self.gossip)
            # Collection time split between fetching and unsealing in proportion to the summed job times.
            share = fetch / ((fetch + unseal) or 1.0)
            clock.seconds["ipfs"] += collect_wall * share
            clock.seconds["seal"] += collect_wall * (1 - share)
            if self.measure_detail:
                t_other = time.perf_counter()
                _, other_wall, other_fetch, other_unseal = self._collect(round, commitments, own, fetch_pool, {},
                                                                         gossip=not self.gossip)
                self.bench_only_seconds[round] = time.perf_counter() - t_other
                by_source = {self.gossip: (collect_wall, fetch, unseal), not self.gossip: (other_wall, other_fetch,
                                                                                          other_unseal)}
                self.detail[round] = {
                    "per_peer": {a: {"seal": p[0], "ipfs_add": p[1], "commit": p[2]} for a, p in zip(blobs, parts)},
                    "seal_own": sum(p[0] for p in parts), "ipfs_add": sum(p[1] for p in parts),
                    "commit": sum(p[2] for p in parts), "read_commitments": read_seconds,
                    "collect_ipfs": by_source[False][0], "fetch_ipfs_sum": by_source[False][1],
                    "unseal_sum": by_source[False][2], "collect_gossip": by_source[True][0],
                    "fetched_blobs": sum(1 for c in commitments if c.member != me),
                    "fetch_threads": FETCH_THREADS,
                }
        self.gas_by_round[round] = gas
        return out

    def finalize(self, round: int, outcome: RoundOutcome | None, clock: PhaseClock) -> tuple[bool, int, int]:
        from devnet.anvil import increase_time
        from ledger_tools.chain import LedgerError

        gas = self.gas_by_round.get(round, 0)
        if outcome is None:
            with clock.phase("chain"):
                increase_time(self.rpc_url, self.commit_period + self.vote_period)
                gas += self.ledger.close_failed_round(round).gas_used
            self.gas_by_round[round] = gas
            return False, gas, 0
        t_pub = time.perf_counter()
        with clock.phase("ipfs"):
            aggregate_cid = self.store.add(outcome.new_model)
            rewards_cid = self.store.add(outcome.reward_tree.to_json().encode())
        self.detail.setdefault(round, {})["publish_results"] = time.perf_counter() - t_pub
        finalized, votes = False, 0
        peers = self.engine.peers
        order = peers[round % len(peers):] + peers[: round % len(peers)]  # who is quickest rotates
        vote_seconds: list[float] = []
        with clock.phase("vote"):
            for p in order:
                binding = self.bindings[p.address]
                agg_hash = outcome.aggregate_hash
                if p.byzantine:
                    agg_hash = adversary.wrong_digest(outcome.aggregate_hash, seed=p.index)
                t_vote = time.perf_counter()
                try:
                    receipt = binding.vote(round, agg_hash, aggregate_cid, outcome.rewards_root, rewards_cid,
                                           list(outcome.excluded))
                except LedgerError:
                    break
                vote_seconds.append(time.perf_counter() - t_vote)
                gas += receipt.gas_used
                votes += 1
                if receipt.finalized:
                    finalized = True
                    break
        self.detail.setdefault(round, {})["vote_tx"] = vote_seconds
        self.gas_by_round[round] = gas
        return finalized, gas, votes

    def summary(self) -> dict:
        return {"contract": self.ledger.address, "rpc_url": self.rpc_url, "ipfs_api_url": self.ipfs_api_url,
                "deploy_gas": self.deploy_gas, "deploy_seconds": round(self.deploy_seconds, 3),
                "gas_by_round": self.gas_by_round}

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()


def peer_key(seed: int, index: int) -> bytes:
    """Deterministic secp256k1 private key of simulated peer `index` (never use outside simulations)."""
    return hashlib.sha256(f"fedledger-sim:{seed}:{index}".encode()).digest()


def _peer_seed(seed: int, round: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"train:{seed}:{round}:{index}".encode()).digest()[:4], "little")


def forge_update(
    attack: str,
    own: StateDict,
    honest: Sequence[StateDict],
    *,
    n: int,
    f: int,
    seed: int,
) -> StateDict:
    """A Byzantine peer's float update for `attack` (via `peer.adversary`), given its own honestly trained
    update and, for the omniscient attacks ALIE and IPM, the honest peers' updates of this round (a rushing
    member can unseal them before the commit deadline).

    Strengths are module constants, documented in docs/robustness.md.
    """
    if attack in ("label_flip", "none"):
        return dict(own)
    if attack == "sign_flip":
        return adversary.sign_flip(own, factor=SIGN_FLIP_FACTOR)
    if attack == "scaled":
        return adversary.scaled(own, factor=SCALE_FACTOR)
    if attack == "gaussian":
        return adversary.gaussian(own, std=GAUSSIAN_STD, seed=seed)
    if attack == "alie":
        if len(honest) < 2:
            return dict(own)
        return adversary.alie(honest, n=n, f=f)
    if attack == "ipm":
        return adversary.ipm(honest, epsilon=IPM_EPSILON) if honest else dict(own)
    raise SimError(f"unknown attack {attack!r}")


def train_batched(
    task: Task,
    global_state: Mapping[str, torch.Tensor],
    shards: Sequence[TaskData],
    seeds: Sequence[int],
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    momentum: float,
) -> list[StateDict]:
    """`peer.training.train_local` (plain SGD with momentum, no DP, no FedProx) for many peers at once.

    The same algorithm — per-peer seeded shuffles, mini-batches of `batch_size` (last one smaller), mean
    cross-entropy per batch, SGD with momentum — but all peers step together through `torch.func.vmap`, so a
    20-peer round costs a few vectorised steps instead of hundreds of tiny ones. Peers with fewer batches sit
    out the extra steps. Results equal `train_local`'s up to float rounding (not bit-identical); the
    robustness bench uses it, the protocol and the ledger runs use `train_local`.
    """
    from torch.func import functional_call, grad, vmap

    model = task.model_from_state(global_state)
    names = [n for n, _ in model.named_parameters()]
    p_count = len(shards)
    params = {n: global_state[n].to(torch.float32).unsqueeze(0).repeat(p_count, *([1] * global_state[n].ndim))
              for n in names}
    bufs = {n: torch.zeros_like(v) for n, v in params.items()}
    steps = [max(1, math.ceil(len(d) / batch_size)) for d in shards]
    max_steps = max(steps)
    dim = shards[0].x.shape[1]
    # Index plan: for each epoch and step, each peer's batch (padded to batch_size, mask for real samples).
    xs = torch.zeros(epochs * max_steps, p_count, batch_size, dim)
    ys = torch.zeros(epochs * max_steps, p_count, batch_size, dtype=torch.int64)
    mask = torch.zeros(epochs * max_steps, p_count, batch_size)
    active = torch.zeros(epochs * max_steps, p_count)
    for j, (d, seed) in enumerate(zip(shards, seeds)):
        gen = torch.Generator().manual_seed(int(seed))
        n = len(d)
        for e in range(epochs):
            order = torch.randperm(n, generator=gen)
            for s in range(steps[j]):
                idx = order[s * batch_size: (s + 1) * batch_size]
                t = e * max_steps + s
                xs[t, j, : len(idx)] = d.x[idx]
                ys[t, j, : len(idx)] = d.y[idx]
                mask[t, j, : len(idx)] = 1.0
                active[t, j] = 1.0

    def batch_loss(p: dict, x: torch.Tensor, y: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
        logits = functional_call(model, p, (x,))
        ce = torch.nn.functional.cross_entropy(logits, y, reduction="none")
        return (ce * m).sum() / m.sum().clamp(min=1.0)

    step_grads = vmap(grad(batch_loss))
    for t in range(epochs * max_steps):
        g = step_grads(params, xs[t], ys[t], mask[t])
        a = active[t]
        for n in names:
            shape = (p_count,) + (1,) * (params[n].ndim - 1)
            on = a.reshape(shape)
            new_buf = momentum * bufs[n] + g[n]
            bufs[n] = torch.where(on > 0, new_buf, bufs[n])
            params[n] = torch.where(on > 0, params[n] - lr * bufs[n], params[n])
    out = []
    for j in range(p_count):
        state = {k: v.to(torch.float32).clone() for k, v in global_state.items()}
        for n in names:
            state[n] = params[n][j].detach().clone().contiguous()
        out.append(state)
    return out


def clamp_f(rule: str, n: int, f: int) -> int:
    """Largest f ≤ the requested one that `rule` accepts for n inputs (Krum n > 2f+2, Bulyan n ≥ 4f+3,
    trimmed mean / median n > 2f); the bench reports the f actually used."""
    base = rule.split("+")[-1]
    if base in ("krum", "multi_krum"):
        bound = (n - 3) // 2
    elif base == "bulyan":
        bound = (n - 3) // 4
    elif base in ("trimmed_mean", "median"):
        bound = (n - 1) // 2
    else:
        bound = n
    return max(0, min(f, bound))


class SimEngine:
    """Runs a `SimConfig` over a `Transport`; `run()` returns a `SimResult`."""

    def __init__(self, config: SimConfig, transport: Transport | None = None, *, task: Task | None = None,
                 on_round=None) -> None:
        from eth_account import Account

        self.config = config
        self.transport = transport or LocalTransport()
        self.task = task or config.build_task()
        self.on_round = on_round
        train = self.task.train_data
        parts = partition(train.labels, config.peers, alpha=config.alpha, seed=config.seed)
        byz_rng = np.random.default_rng([config.seed, 7])
        byzantine = set(byz_rng.choice(config.peers, size=config.byzantine, replace=False).tolist())
        self.peers: list[SimPeer] = []
        for i, part in enumerate(parts):
            key = peer_key(config.seed, i)
            self.peers.append(SimPeer(
                index=i,
                address=Account.from_key(key).address,
                private_key=key,
                data=train.subset(part),
                byzantine=i in byzantine,
                attack=config.attack if i in byzantine else "none",
            ))
        self.by_address = {p.address: p for p in self.peers}
        self.genesis_model = consensus.encode(self.task.genesis_state(config.seed), scale_bits=config.scale_bits)
        self.spec = self.task.model_spec()
        self.model = self.genesis_model
        #: round -> peer address -> seconds of its own local training + encoding (sequential training only):
        #: in a deployment peers do this in parallel, so the slowest peer gates the round.
        self.peer_seconds: dict[int, dict[str, float]] = {}

    def _local_updates(self, round: int, global_state: StateDict, clock: PhaseClock) -> dict[str, StateDict]:
        cfg = self.config
        floats: dict[str, StateDict] = {}
        with clock.phase("train"):
            if cfg.batched_training:
                shards = [adversary.label_flip(p.data, self.task.num_classes) if p.attack == "label_flip" else p.data
                          for p in self.peers]
                states = train_batched(
                    self.task, global_state, shards, [_peer_seed(cfg.seed, round, p.index) for p in self.peers],
                    epochs=cfg.local_epochs, batch_size=cfg.batch_size, lr=cfg.lr, momentum=cfg.momentum,
                )
                for p, st in zip(self.peers, states):
                    if all(torch.isfinite(v).all() for v in st.values()):
                        floats[p.address] = {k: (v - global_state[k]).contiguous() for k, v in st.items()}
            for p in self.peers if not cfg.batched_training else ():
                data = adversary.label_flip(p.data, self.task.num_classes) if p.attack == "label_flip" else p.data
                t_peer = time.perf_counter()
                try:
                    result = train_local(
                        self.task, global_state, data, epochs=cfg.local_epochs, batch_size=cfg.batch_size,
                        lr=cfg.lr, momentum=cfg.momentum, seed=_peer_seed(cfg.seed, round, p.index),
                    )
                except FloatingPointError:
                    continue  # this peer's training diverged from a poisoned model: it commits nothing
                floats[p.address] = result.update(global_state)
                self.peer_seconds.setdefault(round, {})[p.address] = time.perf_counter() - t_peer
            honest = [u for a, u in floats.items() if not self.by_address[a].byzantine]
            for p in self.peers:
                if p.byzantine and p.address in floats:
                    floats[p.address] = forge_update(
                        p.attack, floats[p.address], honest, n=cfg.peers, f=cfg.byzantine,
                        seed=_peer_seed(cfg.seed, round, 10**6 + p.index),
                    )
        return floats

    def _encode(self, round: int, floats: Mapping[str, StateDict], clock: PhaseClock) -> dict[str, tuple[bytes, int]]:
        out = {}
        with clock.phase("encode"):
            for a, u in floats.items():
                t_peer = time.perf_counter()
                out[a] = (consensus.encode(u, scale_bits=self.config.scale_bits), len(self.by_address[a].data))
                spent = self.peer_seconds.setdefault(round, {})
                spent[a] = spent.get(a, 0.0) + time.perf_counter() - t_peer
        return out

    def run_round(self, round: int) -> RoundRecord:
        cfg = self.config
        clock = PhaseClock()
        started = time.perf_counter()
        global_state = consensus.decode(self.model, spec=self.spec)
        blobs = self._encode(round, self._local_updates(round, global_state, clock), clock)
        committed = self.transport.publish(round, blobs, clock)
        outcome: RoundOutcome | None
        with clock.phase("aggregate"):
            try:
                outcome = compute_round_outcome(
                    round=round, previous_model=self.model, updates=committed, rule=cfg.rule, rule_param=0,
                    f=clamp_f(cfg.rule, len(committed), cfg.effective_f), reward_pool=cfg.reward_per_round,
                    spec=self.spec,
                )
            except RoundNotAggregatable:
                outcome = None
        finalized, gas, votes = self.transport.finalize(round, outcome, clock)
        if finalized and outcome is not None:
            self.model = outcome.new_model
        wall = time.perf_counter() - started - getattr(self.transport, "bench_only_seconds", {}).get(round, 0.0)
        ev = self.task.evaluate(consensus.decode(self.model, spec=self.spec))
        excluded = list(outcome.excluded) if outcome else []
        byz = sum(self.by_address[a].byzantine for a in excluded)
        rejected = [a for a, sc in zip(outcome.peers, outcome.scores) if sc == 0 or a in excluded] if outcome else []
        rej_byz = sum(self.by_address[a].byzantine for a in rejected)
        return RoundRecord(
            round=round, accuracy=ev.accuracy, loss=ev.loss, finalized=finalized,
            aggregate_hash=consensus.update_hash(self.model).hex(), excluded=excluded,
            excluded_byzantine=byz, excluded_honest=len(excluded) - byz,
            rejected_byzantine=rej_byz, rejected_honest=len(rejected) - rej_byz,
            phase_seconds=clock.snapshot(), wall_seconds=round_(wall), gas_used=gas, votes=votes,
        )

    def run(self) -> SimResult:
        torch.set_num_threads(1)
        cfg = self.config
        result = SimResult(
            config={**asdict(cfg), "effective_f": clamp_f(cfg.rule, cfg.peers, cfg.effective_f),
                    "num_parameters": sum(t.numel() for t in self.task.genesis_state().values())},
            peers=[{"index": p.index, "address": p.address, "byzantine": p.byzantine,
                    "attack": p.attack, "samples": len(p.data)} for p in self.peers],
        )
        result.genesis_accuracy = self.task.evaluate(consensus.decode(self.model, spec=self.spec)).accuracy
        self.transport.start(self, self.genesis_model)
        try:
            for r in range(1, cfg.rounds + 1):
                record = self.run_round(r)
                result.rounds.append(record)
                if self.on_round is not None:
                    self.on_round(record)
            result.ledger = getattr(self.transport, "summary", lambda: {})()
        finally:
            self.transport.close()
        result.final_model_hash = consensus.update_hash(self.model).hex()
        return result


def round_(x: float) -> float:
    return float(f"{x:.6f}")


def run_simulation(config: SimConfig, transport: Transport | None = None, **kwargs) -> SimResult:
    return SimEngine(config, transport, **kwargs).run()


def with_fraction(config: SimConfig, fraction: float) -> SimConfig:
    """`config` with round(fraction · peers) Byzantine peers."""
    return replace(config, byzantine=int(round(fraction * config.peers)))
