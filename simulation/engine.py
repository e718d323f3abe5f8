"""In-process federation engine: many peers in one process, the protocol's own consensus code.

Every round runs the protocol's steps for every simulated peer — local training, canonical encoding,
(sealing, IPFS, on-chain commitment when a ledger is attached), exact robust aggregation through
`consensus.round_outcome.compute_round_outcome` (the very function real peers and auditors use), and
the vote. Only the transport differs from a real deployment: peers hand each other blobs in memory
instead of over libp2p gossip.

Two transports:

* `simulation.transport.LocalTransport` (ledger-free): blobs stay in memory, nothing is sealed or committed.
  The robustness bench uses it; the model trajectory is bit-identical to the ledger mode's for the same seed.
* `simulation.chain_transport.ChainTransport`: the real contract on a devnet and a real IPFS node (see there).

Determinism: every random choice derives from `SimConfig.seed` (peer keys, data split, training seeds,
attack noise), training runs single-threaded, and aggregation is exact integer arithmetic, so the same
config gives the same final model bytes (hash) on the same machine.
"""
from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace

import numpy as np
import torch

import consensus
from consensus.commitment import CommittedUpdate
from consensus.round_outcome import RoundNotAggregatable, RoundOutcome, compute_round_outcome
from peer.byzantine import adversary
from peer.learning.partition import partition
from peer.learning.tasks import StateDict, Task
from peer.learning.training import train_batched, train_local
from simulation.attacks import forge_update
from simulation.config import SimConfig, clamp_f
from simulation.records import PhaseClock, RoundRecord, SimPeer, SimResult, round_
from simulation.transport import LocalTransport, Transport

#: (round, committed updates, f, our outcome) -> aggregate update blob; see SimEngine.aggregate_override.
AggregateOverride = Callable[[int, Sequence[CommittedUpdate], int, RoundOutcome], bytes]
#: (float update vectors, f) -> their aggregate; see SimEngine.attack_aggregator.
AttackAggregator = Callable[[Sequence[np.ndarray], int], np.ndarray]


def peer_key(seed: int, index: int) -> bytes:
    """Deterministic secp256k1 private key of simulated peer `index` (never use outside simulations)."""
    return hashlib.sha256(f"fedledger-sim:{seed}:{index}".encode()).digest()


def _peer_seed(seed: int, round: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"train:{seed}:{round}:{index}".encode()).digest()[:4], "little")



class SimEngine:
    """Runs a `SimConfig` over a `Transport`; `run()` returns a `SimResult`."""

    def __init__(self, config: SimConfig, transport: Transport | None = None, *, task: Task | None = None,
                 on_round=None, aggregate_override: AggregateOverride | None = None,
                 attack_aggregator: AttackAggregator | None = None) -> None:
        from eth_account import Account

        self.config = config
        self.transport = transport or LocalTransport()
        self.task = task or config.build_task()
        self.on_round = on_round
        #: benches only (bench.robustness_byzfl): (round, committed updates, f, our outcome) -> the aggregate update
        #: blob to apply instead of ours, so another definition of a rule runs on exactly our rule's inputs.
        self.aggregate_override = aggregate_override
        #: benches only, with aggregate_override: what alie_opt/ipm_opt line-search against instead of our rule.
        self.attack_aggregator = attack_aggregator
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
            rule_f = clamp_f(cfg.rule, len(floats), cfg.effective_f)
            target = self.attack_aggregator
            aggregator = (lambda vectors: target(vectors, rule_f)) if target is not None else None
            for p in self.peers:
                if p.byzantine and p.address in floats:
                    floats[p.address] = forge_update(
                        p.attack, floats[p.address], honest, n=cfg.peers, f=cfg.byzantine,
                        seed=_peer_seed(cfg.seed, round, 10**6 + p.index),
                        rule=cfg.rule, rule_f=rule_f, aggregator=aggregator,
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
            f = clamp_f(cfg.rule, len(committed), cfg.effective_f)
            try:
                outcome = compute_round_outcome(
                    round=round, previous_model=self.model, updates=committed, rule=cfg.rule, rule_param=0,
                    f=f, reward_pool=cfg.reward_per_round, spec=self.spec,
                )
            except RoundNotAggregatable:
                outcome = None
            if outcome is not None and self.aggregate_override is not None:
                update = self.aggregate_override(round, committed, f, outcome)
                new_model = consensus.apply_update(self.model, update)
                outcome = replace(outcome, aggregate_update=update, new_model=new_model)
        finalized, gas, votes = self.transport.finalize(round, outcome, clock)
        if finalized and outcome is not None:
            self.model = outcome.new_model
        wall = time.perf_counter() - started - getattr(self.transport, "bench_only_seconds", {}).get(round, 0.0)
        ev = self.task.evaluate(consensus.decode(self.model, spec=self.spec))
        excluded = list(outcome.excluded) if outcome else []
        byz = sum(self.by_address[a].byzantine for a in excluded)
        rejected = [a for a, sc in zip(outcome.peers, outcome.scores) if sc == 0 or a in excluded] if outcome else []
        rej_byz = sum(self.by_address[a].byzantine for a in rejected)
        paid = dict(zip(outcome.peers, outcome.amounts)) if finalized and outcome is not None else {}
        paid_byz = sum(x for a, x in paid.items() if self.by_address[a].byzantine)
        return RoundRecord(
            round=round, accuracy=ev.accuracy, loss=ev.loss, finalized=finalized,
            aggregate_hash=consensus.update_hash(self.model).hex(), excluded=excluded,
            excluded_byzantine=byz, excluded_honest=len(excluded) - byz,
            rejected_byzantine=rej_byz, rejected_honest=len(rejected) - rej_byz,
            phase_seconds=clock.snapshot(), wall_seconds=round_(wall), gas_used=gas, votes=votes,
            rewarded_honest_wei=sum(paid.values()) - paid_byz, rewarded_byzantine_wei=paid_byz,
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



def run_simulation(config: SimConfig, transport: Transport | None = None, **kwargs) -> SimResult:
    return SimEngine(config, transport, **kwargs).run()
