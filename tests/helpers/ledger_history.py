"""Drive a federation's rounds directly through the binding, to give the auditor a ledger with history.

No peer processes: each round, every member seals a random canonical update for all members and auditors, adds
it to the blob store and commits it; the vote is computed with the shared `compute_round_outcome`, the new model
and the reward tree are published, and members vote until the round finalizes. Hooks let a test make members
lie (commit another blob, vote a wrong outcome) so the auditor has something to catch. Deterministic given
`seed` (apart from the seal's random nonces, which change blob bytes but not any canonical update).
"""
from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

import consensus
from consensus.commitment import Commitment, CommittedUpdate
from consensus.round_outcome import RoundOutcome, compute_round_outcome
from devnet.anvil import DevAccount, extra_accounts, increase_time
from devnet.deploy import deploy_governed_federation
from ledger_tools.chain import WEIGHT_ONE, FederationLedger
from ledger_tools.chain.governance import FederationGovernor, GovParams, ProposalReceipt
from ledger_tools.config import FederationConfig
from peer.crypto.seal import seal, unseal

SHAPES = {"layer.weight": (4, 3), "layer.bias": (4,)}
#: Governance of a history's federation: a proposal passes a minute after it opened and executes at once.
HISTORY_GOV = GovParams(voting_period=60, execution_delay=0, execution_window=86400, withdraw_delay=60)


def _x25519(seed: bytes) -> X25519PrivateKey:
    return X25519PrivateKey.from_private_bytes(hashlib.sha256(seed).digest())


def _public(key: X25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass
class Member:
    account: DevAccount
    enc_key: X25519PrivateKey
    ledger: FederationLedger

    @property
    def address(self) -> str:
        return self.account.address


@dataclass
class Auditor:
    account: DevAccount
    enc_key: X25519PrivateKey

    @property
    def address(self) -> str:
        return self.account.address


@dataclass(frozen=True)
class Lie:
    """What colluding voters vote instead of the true outcome: (aggregate hash, model CID, reward tree, excluded)."""

    aggregate_hash: bytes
    aggregate_cid: str
    tree: consensus.RewardTree
    excluded: tuple[str, ...]


@dataclass
class LedgerHistory:
    rpc_url: str
    owner: FederationLedger  # the deployer's binding: no power left (the governor owns the ledger)
    members: list[Member]
    auditor: Auditor
    store: object
    config: FederationConfig
    model: bytes
    rng: np.random.Generator
    shapes: dict[str, tuple[int, ...]] = field(default_factory=lambda: dict(SHAPES))
    extra_recipients: dict[str, bytes] = field(default_factory=dict)  # auditors registered later: address -> key
    outcomes: dict[int, RoundOutcome] = field(default_factory=dict)
    round: int = 1
    governor: FederationGovernor | None = None
    joining: list[Member] = field(default_factory=list)  # admitted while `round` is open: members from the next

    def govern(self, propose: Callable[[FederationGovernor], ProposalReceipt]) -> int:
        """Pass a proposal by member vote: the first member proposes, every member votes for, the clock moves
        past the voting period, anyone executes. Returns the proposal id."""
        assert self.governor is not None
        gov = [self.governor.with_account(m.account.private_key) for m in self.members]
        pid = propose(gov[0]).proposal_id
        for g in gov:
            g.vote(pid, True)
        increase_time(self.rpc_url, HISTORY_GOV.voting_period + HISTORY_GOV.execution_delay + 1)
        gov[0].execute(pid)
        return pid

    def admit(self, account: DevAccount, enc_key: X25519PrivateKey, stake_wei: int = 10**18) -> Member:
        """The candidate stakes, the members admit it by vote; it commits and votes from the next round on (the
        open round keeps the members it opened with), but is sealed to at once."""
        assert self.governor is not None
        self.governor.with_account(account.private_key).stake(stake_wei)
        self.govern(lambda g: g.propose_admit(account.address, _public(enc_key), WEIGHT_ONE, stake_wei))
        member = Member(account, enc_key, self.owner.with_account(account.private_key))
        self.joining.append(member)
        return member

    def register_auditor(self, address: str, enc_key: bytes) -> int:
        """Register an auditor by member vote; later blobs are sealed to it too."""
        pid = self.govern(lambda g: g.propose_register_auditor(address, enc_key))
        self.extra_recipients[address] = enc_key
        return pid

    @property
    def address(self) -> str:
        return self.owner.address

    def member(self, address: str) -> Member:
        return next(m for m in self.members if m.address.lower() == address.lower())

    def recipients(self) -> dict[str, bytes]:
        keys = {m.address: _public(m.enc_key) for m in self.members + self.joining}
        keys[self.auditor.address] = _public(self.auditor.enc_key)
        keys.update(self.extra_recipients)
        return keys

    def auditor_unseal(self) -> Callable[[bytes, str, int], bytes]:
        def _unseal(blob: bytes, sender: str, round_: int) -> bytes:
            return unseal(blob, self.auditor.address, self.auditor.enc_key, federation=self.address, round=round_,
                          sender=sender)
        return _unseal

    def random_update(self) -> bytes:
        tensors = {name: self.rng.normal(0.0, 0.05, size=shape) for name, shape in self.shapes.items()}
        return consensus.encode(tensors, scale_bits=self.config.scale_bits)

    def sealed(self, update: bytes, sender: str, round_: int) -> bytes:
        return seal(update, self.recipients(), federation=self.address, round=round_, sender=sender)

    def run_round(
        self,
        *,
        committers: Sequence[Member] | None = None,
        commit_cid: dict[str, str] | None = None,
        liars: Sequence[Member] = (),
        lie: Callable[[RoundOutcome], Lie] | None = None,
        use_store: bool = True,
        after_first_vote: Callable[[], None] | None = None,
    ) -> RoundOutcome:
        """One round: commit, compute, publish, vote until finalized. Returns the true outcome.
        `after_first_vote` runs once between the first vote and the others (e.g. a member admitted mid-round).

        `commit_cid` maps a member to the CID it commits instead of its real blob's (the others still see its
        real update, as if gossiped); `liars` vote `lie(outcome)`, right after the first honest voter.
        """
        r = self.round
        committers = list(self.members if committers is None else committers)
        updates = []
        for i, m in enumerate(committers):
            update = self.random_update()
            blob = self.sealed(update, m.address, r)
            cid = self.store.add(blob) if use_store else _fake_cid(blob)
            if commit_cid and m.address in commit_cid:
                cid = commit_cid[m.address]
            samples = 50 + 10 * i
            m.ledger.commit(r, hashlib.sha256(update).digest(), cid, samples, 2_500_000, 10**13)
            updates.append(
                CommittedUpdate(Commitment(m.address, hashlib.sha256(update).digest(), "", samples, round=r), update)
            )
        pool = self.owner.round_pool(r)  # fixed on chain when the round opened, as peers read it
        outcome = compute_round_outcome(
            round=r, previous_model=self.model, updates=updates, rule=self.config.rule,
            rule_param=self.config.rule_param, f=self.config.f, reward_pool=pool, sample_cap=self.config.sample_cap,
        )
        model_cid = self.store.add(outcome.new_model) if use_store else _fake_cid(outcome.new_model)
        tree_json = outcome.reward_tree.to_json().encode()
        rewards_cid = self.store.add(tree_json) if use_store else _fake_cid(tree_json)
        honest = [m for m in self.members if m not in liars]
        ballots = [(m, outcome.aggregate_hash, model_cid, outcome.rewards_root, rewards_cid, outcome.excluded)
                   for m in honest]
        if liars:  # one honest vote goes first (on record as dissent), then the colluders finalize
            bad = lie(outcome)
            bad_tree_cid = self.store.add(bad.tree.to_json().encode()) if use_store else _fake_cid(b"t")
            ballots = ballots[:1] + [(m, bad.aggregate_hash, bad.aggregate_cid, bad.tree.root, bad_tree_cid,
                                      bad.excluded) for m in liars] + ballots[1:]
        finalized_hash = None
        for i, (m, agg, agg_cid, root, root_cid, excluded) in enumerate(ballots):
            receipt = m.ledger.vote(r, agg, agg_cid, root, root_cid, sorted(excluded, key=lambda a: int(a, 16)))
            if receipt.finalized:
                finalized_hash = agg
                break
            if i == 0 and after_first_vote is not None:
                after_first_vote()
        if finalized_hash == outcome.aggregate_hash:
            self.model = outcome.new_model
        elif finalized_hash is not None:
            self.model = self._lied_model
        self.outcomes[r] = outcome
        self._next_round()
        return outcome

    _lied_model: bytes = b""

    def _next_round(self) -> None:
        self.round += 1
        self.members += self.joining
        self.joining.clear()

    def fail_round(self, *, committers: Sequence[Member] | None = None) -> list[bytes]:
        """Members commit (blobs on the store), nobody votes; after the vote deadline the round is closed as failed.

        Returns the committed canonical updates.
        """
        from devnet.anvil import increase_time

        r = self.round
        updates = []
        for m in (self.members if committers is None else committers):
            update = self.random_update()
            m.ledger.commit(r, hashlib.sha256(update).digest(), self.store.add(self.sealed(update, m.address, r)), 10)
            updates.append(update)
        increase_time(self.rpc_url, 2 * 3600 + 60)
        self.owner.close_failed_round(r)
        self._next_round()
        return updates


def _fake_cid(data: bytes) -> str:
    from ledger_tools.blobstore import raw_cid

    return raw_cid(data)


def wrong_model_lie(history: LedgerHistory) -> Callable[[RoundOutcome], Lie]:
    """Colluders finalize the previous model scaled by another random update (a wrong aggregate)."""
    def lie(outcome: RoundOutcome) -> Lie:
        bogus = consensus.apply_update(history.model, history.random_update())
        history._lied_model = bogus
        cid = history.store.add(bogus)
        return Lie(hashlib.sha256(bogus).digest(), cid, outcome.reward_tree, outcome.excluded)
    return lie


def pay_wrong_peer_lie(history: LedgerHistory, beneficiary: str) -> Callable[[RoundOutcome], Lie]:
    """Colluders keep the true aggregate but route the whole reward pool to `beneficiary`."""
    def lie(outcome: RoundOutcome) -> Lie:
        total = sum(outcome.amounts)
        tree = consensus.RewardTree.build(outcome.round, [beneficiary], [total])
        history._lied_model = outcome.new_model
        cid = history.store.add(outcome.new_model)
        return Lie(outcome.aggregate_hash, cid, tree, outcome.excluded)
    return lie


def make_history(
    rpc_url: str,
    store,
    deployer_key: str,
    *,
    n_members: int = 4,
    rule: str = "fedavg",
    f: int = 0,
    reward_per_round_wei: int = 10**16,
    funding_wei: int = 10**18,
    seed: int = 0,
    account_seed: str = "ledger-history",
    use_store: bool = True,
    task=None,
) -> LedgerHistory:
    """Deploy a federation of `n_members` fresh accounts (plus one registered auditor) with a real genesis model.

    `task` (a `peer.learning.tasks.Task`) makes the model that task's (its genesis weights and spec), so the finalized
    models can be evaluated; by default a tiny two-tensor model.
    """
    accounts = extra_accounts(rpc_url, n_members + 1, seed=f"{account_seed}/{seed}")
    member_accounts, auditor_account = accounts[:n_members], accounts[n_members]
    keys = [_x25519(f"{account_seed}/{seed}/{a.address}".encode()) for a in accounts]
    rng = np.random.default_rng(seed)
    if task is None:
        shapes = dict(SHAPES)
        genesis = consensus.encode({name: rng.normal(0.0, 0.3, size=shape) for name, shape in shapes.items()})
        spec = consensus.ModelSpec(shapes)
    else:
        state = task.genesis_state()
        shapes = {name: tuple(t.shape) for name, t in state.items()}
        genesis, spec = consensus.encode(state), task.model_spec()
    genesis_cid = store.add(genesis) if use_store else _fake_cid(genesis)
    config = FederationConfig.from_data({
        "members": [{"address": a.address, "enc_key": "0x" + _public(k).hex()}
                    for a, k in zip(member_accounts, keys)],
        "auditors": [{"address": auditor_account.address, "enc_key": "0x" + _public(keys[-1]).hex()}],
        "rule": rule,
        "f": f,
        "commit_period": 3600,
        "vote_period": 3600,
        "reward_per_round_wei": reward_per_round_wei,
        "funding_wei": funding_wei,
        "model_spec_hash": "0x" + spec.spec_hash().hex(),
        "genesis_model_hash": "0x" + hashlib.sha256(genesis).hexdigest(),
        "genesis_model_cid": genesis_cid,
    })
    deployed = deploy_governed_federation(rpc_url, config, deployer_key, HISTORY_GOV)
    owner = deployed.ledger
    members = [Member(a, k, owner.with_account(a.private_key)) for a, k in zip(member_accounts, keys)]
    return LedgerHistory(rpc_url, owner, members, Auditor(auditor_account, keys[-1]), store, config, genesis, rng,
                         shapes=shapes, governor=deployed.governor)


def write_identity(state_dir, private_key: str, enc_key: X25519PrivateKey, password: str) -> None:
    """Store an existing account + X25519 key as a peer identity directory (what `fedledger peer init` writes)."""
    import json
    from pathlib import Path

    from eth_account import Account

    from peer.crypto import identity as ident

    d = Path(state_dir)
    d.mkdir(parents=True, exist_ok=True)
    account = Account.from_key(private_key)
    n = 2**4  # tests only: a cheap scrypt
    (d / ident.KEYSTORE_FILE).write_text(json.dumps(Account.encrypt(account.key, password, kdf="scrypt", iterations=n)))
    (d / ident.X25519_FILE).write_text(json.dumps(ident._encrypt_x25519(enc_key, account.address, password, n)))
    (d / ident.PUBLIC_FILE).write_text(json.dumps({"address": account.address,
                                                    "enc_key": "0x" + _public(enc_key).hex()}))
