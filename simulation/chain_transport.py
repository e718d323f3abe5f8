"""The simulator's ledger transport: the real contract on a devnet and sealed blobs on a real IPFS node."""
from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

import consensus
from consensus.commitment import Commitment, CommittedUpdate
from consensus.round_outcome import RoundOutcome
from ledger_tools.updates import UpdateUnusable, fetch_sealed, open_update
from peer.byzantine import adversary
from simulation.config import SimError, clamp_f
from simulation.records import PhaseClock

if TYPE_CHECKING:
    from simulation.engine import SimEngine


class ChainTransport:
    """The real ledger: the FederationLedger contract on an Ethereum devnet, sealed blobs on a real IPFS node.

    Per round: every peer seals its canonical update for all members (AES-256-GCM + X25519 key wraps), adds the
    sealed blob to IPFS and commits (round, update hash, CID) on chain; an honest observer reads the round's
    commitments from the chain, fetches each blob (IPFS, or the in-memory gossip cache with `gossip=True`),
    unseals and checks it; after aggregation the new model and the reward tree go to IPFS and the peers vote
    until the contract finalizes the round. Byzantine peers vote a wrong digest.

    The observer fetches + unseals the other peers' blobs on `peer.loop.collect.FETCH_THREADS` threads, as a real
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
        from devnet.deploy import deploy_governed_federation
        from ledger_tools.blobstore import IpfsBlobStore
        from ledger_tools.config import FederationConfig, MemberConfig

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
        config = FederationConfig(
            members=[MemberConfig(address=p.address, enc_key="0x" + raw[p.address].hex()) for p in engine.peers],
            rule=cfg.rule, f=clamp_f(cfg.rule, cfg.peers, cfg.effective_f), commit_period=self.commit_period,
            vote_period=self.vote_period, reward_per_round_wei=cfg.reward_per_round, scale_bits=cfg.scale_bits,
            funding_wei=cfg.reward_per_round * cfg.rounds, model_spec_hash="0x" + engine.spec.spec_hash().hex(),
            genesis_model_hash="0x" + consensus.update_hash(genesis_model).hex(), genesis_model_cid=genesis_cid,
        )
        deployer = self.deployer_key or dev_accounts()[0].private_key
        started = time.perf_counter()
        # as every federation: owned by its governor (deploy_gas is the ledger's; deploy_seconds includes both)
        self.ledger = deploy_governed_federation(self.rpc_url, config, deployer).ledger
        self.deploy_seconds = time.perf_counter() - started
        self.deploy_gas = self.ledger.deploy_receipt.gas_used
        self.bindings = {p.address: self.ledger.with_account("0x" + p.private_key.hex()) for p in engine.peers}
        self.observer = next(p for p in engine.peers if not p.byzantine)

    def _seal_add_commit(self, round: int, address: str, blob: bytes,
                         samples: int) -> tuple[float, float, float, int, str]:
        from peer.crypto.seal import seal

        t0 = time.perf_counter()
        sealed = seal(blob, self.enc_public, federation=self.ledger.address, round=round, sender=address)
        t1 = time.perf_counter()
        cid = self.store.add(sealed)
        self._gossip_cache[cid] = sealed
        t2 = time.perf_counter()
        receipt = self.bindings[address].commit(round, consensus.update_hash(blob), cid, samples)
        return t1 - t0, t2 - t1, time.perf_counter() - t2, receipt.gas_used, cid

    def _fetch_unseal(self, c: Commitment, *, gossip: bool) -> tuple[bytes | None, float, float]:
        """The observer's work for one committed blob, through the protocol's own `fetch_sealed` + `open_update`:
        (update or None, fetch seconds, unseal seconds)."""
        from peer.crypto.seal import unseal

        me = self.observer.address

        def open_for_me(sealed: bytes, sender: str, round: int) -> bytes:
            return unseal(sealed, me, self.enc_keys[me], federation=self.ledger.address, round=round, sender=sender)

        t0 = time.perf_counter()
        try:
            cached = self._gossip_cache.get(c.cid) if gossip else None
            sealed = cached if cached is not None else fetch_sealed(self.store, c)
        except UpdateUnusable:  # an unavailable blob is an excluded contribution
            return None, time.perf_counter() - t0, 0.0
        t1 = time.perf_counter()
        try:
            update: bytes | None = open_update(sealed, c, open_for_me)
        except UpdateUnusable:
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
                job = (c.cid, pool.submit(self._fetch_unseal, c, gossip=gossip))
            jobs[c.member] = job[1]
        out, fetch, unseal = [], 0.0, 0.0
        for c in commitments:
            if c.member in jobs:
                update, f, u = jobs[c.member].result()
                fetch, unseal = fetch + f, unseal + u
            else:
                update = own
            out.append(CommittedUpdate(c, update))
        return out, time.perf_counter() - t0, fetch, unseal

    def publish(self, round: int, blobs: Mapping[str, tuple[bytes, int]], clock: PhaseClock) -> list[CommittedUpdate]:
        from concurrent.futures import ThreadPoolExecutor

        from devnet.anvil import increase_time
        from peer.loop.collect import FETCH_THREADS

        me = self.observer.address
        prefetch = not self.measure_detail
        started_jobs: dict[str, tuple[str, object]] = {}
        with ThreadPoolExecutor(FETCH_THREADS, thread_name_prefix="observer-fetch") as fetch_pool:

            def peer_publishes(item) -> tuple[float, float, float, int, str]:
                address, (blob, samples) = item
                part = self._seal_add_commit(round, address, blob, samples)
                if prefetch and address != me:  # the commitment is on chain: the observer starts fetching
                    commitment = Commitment(address, consensus.update_hash(blob), part[4], samples, round=round)
                    started_jobs[address] = (part[4], fetch_pool.submit(
                        self._fetch_unseal, commitment, gossip=self.gossip))
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
        pool = self.ledger.round_pool(round)  # fixed on chain when the round opened: what peers split
        if sum(outcome.amounts) not in (0, pool):
            raise SimError(f"round {round}: the engine split {sum(outcome.amounts)} wei but the chain fixed the "
                           f"round's pool at {pool} wei (the contract is underfunded for this run)")
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
