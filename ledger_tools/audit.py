"""The auditor: a federation's history rebuilt from the ledger's events alone, and its independent re-verification.

Two layers, one concern each:

* **Query model** — `LedgerHistory.from_events(...)` turns the event log (see `ledger_cache`) plus the
  `parameters()` view into rounds, commitments, votes, finalizations and claims. Pure: no I/O.
* **Verification** — `verify_history(...)` re-derives every finalized round from chain + IPFS with the one
  shared derivation (`round_outcome.compute_round_outcome`) and lists every difference as a `Finding`
  naming the round, the peer (where one is to blame) and what differs.

Unsealing is injected (`Unseal`): it lives with the peer's crypto, and the auditor's key is the caller's.
"""
from __future__ import annotations

import enum
import hashlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import consensus

from ledger_tools.ledger_cache import LedgerEvent
from ledger_tools.round_outcome import CommittedUpdate, RoundNotAggregatable, compute_round_outcome

#: unseal(sealed_blob, sender, round) -> canonical update bytes; raises on anything wrong.
Unseal = Callable[[bytes, str, int], bytes]

NO_DP = 2**64 - 1
ZERO32 = b"\x00" * 32


def _b32(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))


def _addr_key(address: str) -> int:
    return int(address, 16)


def short(value: bytes | str, n: int = 10) -> str:
    text = value if isinstance(value, str) else "0x" + value.hex()
    return text if len(text) <= n + 2 else text[: n + 2] + "…"


# ------------------------------------------------------------------------------------------------ query model


@dataclass(frozen=True)
class FederationParams:
    """The federation's parameters as the `parameters()` view returns them."""

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

    @classmethod
    def from_view(cls, value: Any) -> "FederationParams":
        """From the `parameters()` return value (a tuple in ABI order, or a mapping)."""
        keys = ["rule", "ruleParam", "f", "quorumBps", "commitPeriod", "votePeriod", "rewardPerRound",
                "modelSpecHash", "genesisModelHash", "genesisModelCid", "scaleBits", "alphaBps", "sampleCap"]
        items = [value[k] for k in keys] if hasattr(value, "keys") else list(value)
        return cls(str(items[0]), *(int(v) for v in items[1:7]), _b32(items[7]), _b32(items[8]), str(items[9]),
                   *(int(v) for v in items[10:13]))

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule, "rule_param": self.rule_param, "f": self.f, "quorum_bps": self.quorum_bps,
            "commit_period": self.commit_period, "vote_period": self.vote_period,
            "reward_per_round": str(self.reward_per_round), "model_spec_hash": "0x" + self.model_spec_hash.hex(),
            "genesis_model_hash": "0x" + self.genesis_model_hash.hex(), "genesis_model_cid": self.genesis_model_cid,
            "scale_bits": self.scale_bits, "alpha_bps": self.alpha_bps, "sample_cap": self.sample_cap,
        }


@dataclass(frozen=True)
class Commitment:
    round: int
    peer: str
    update_hash: bytes
    cid: str
    num_samples: int
    epsilon: float | None  # None = no differential privacy
    delta: float
    block: int
    tx: str
    gas_used: int


@dataclass(frozen=True)
class Vote:
    round: int
    voter: str
    digest: bytes
    aggregate_hash: bytes
    aggregate_cid: str
    rewards_root: bytes
    rewards_cid: str
    excluded: tuple[str, ...]
    weight: int
    block: int
    tx: str
    gas_used: int


@dataclass(frozen=True)
class Finalization:
    round: int
    digest: bytes
    aggregate_hash: bytes
    aggregate_cid: str
    rewards_root: bytes
    rewards_cid: str
    excluded: tuple[str, ...]
    weight_for: int
    total_weight: int
    pool: int
    block: int


@dataclass(frozen=True)
class ClaimRecord:
    account: str
    rounds: tuple[int, ...]
    amounts: tuple[int, ...]
    total: int
    block: int
    tx: str
    gas_used: int


class RoundStatus(str, enum.Enum):
    OPEN = "open"
    FINALIZED = "finalized"
    FAILED = "failed"


@dataclass
class RoundRecord:
    """Everything the ledger says about one round."""

    round: int
    start: int = 0
    commit_deadline: int = 0
    vote_deadline: int = 0
    status: RoundStatus = RoundStatus.OPEN
    commits: list[Commitment] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    finalization: Finalization | None = None
    failed_by: str | None = None
    close_gas: int = 0

    @property
    def gas_used(self) -> int:
        """Gas of every transaction of the round (commits, votes, the failure close)."""
        return sum(c.gas_used for c in self.commits) + sum(v.gas_used for v in self.votes) + self.close_gas

    def votes_per_digest(self) -> dict[bytes, tuple[int, int]]:
        """digest -> (number of votes, voting weight), most weight first."""
        tally: dict[bytes, list[int]] = defaultdict(lambda: [0, 0])
        for v in self.votes:
            tally[v.digest][0] += 1
            tally[v.digest][1] += v.weight
        return dict(sorted(((d, (c, w)) for d, (c, w) in tally.items()), key=lambda kv: -kv[1][1]))

    def commitment_of(self, peer: str) -> Commitment | None:
        return next((c for c in self.commits if c.peer.lower() == peer.lower()), None)


@dataclass(frozen=True)
class PeerRound:
    round: int
    committed: bool
    voted: bool
    agreed: bool | None  # voted the finalized digest (None: round not finalized or no vote)
    excluded: bool
    reward: int | None  # None: not known without the reward tree
    claimed: bool
    epsilon: float | None
    delta: float | None


@dataclass(frozen=True)
class PeerHistory:
    address: str
    is_member: bool
    admitted_block: int | None
    rounds: tuple[PeerRound, ...]
    total_claimed: int
    weight_updates: tuple[tuple[int, int], ...]  # (block, new weight)

    @property
    def commits(self) -> int:
        return sum(r.committed for r in self.rounds)

    @property
    def votes(self) -> int:
        return sum(r.voted for r in self.rounds)

    @property
    def agreements(self) -> int:
        return sum(bool(r.agreed) for r in self.rounds)

    @property
    def times_excluded(self) -> int:
        return sum(r.excluded for r in self.rounds)

    @property
    def epsilon_total(self) -> float | None:
        """Sum of the per-round epsilons (basic composition, an upper bound); None when no round used DP."""
        spent = [r.epsilon for r in self.rounds if r.epsilon is not None]
        return sum(spent) if spent else None


@dataclass
class LedgerHistory:
    """A federation's whole history as recorded by the ledger."""

    chain_id: int
    address: str
    params: FederationParams
    members: dict[str, int] = field(default_factory=dict)  # address -> admission block
    member_keys: dict[str, bytes] = field(default_factory=dict)
    auditors: dict[str, bytes] = field(default_factory=dict)  # address -> X25519 key
    rounds: dict[int, RoundRecord] = field(default_factory=dict)
    claims: list[ClaimRecord] = field(default_factory=list)
    weights: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    funded: int = 0

    @classmethod
    def from_events(
        cls, events: Iterable[LedgerEvent], params: FederationParams, *, chain_id: int, address: str
    ) -> "LedgerHistory":
        h = cls(chain_id=chain_id, address=address, params=params)
        for ev in events:
            a = ev.args
            if ev.name == "MemberAdmitted":
                h.members[a["member"]] = ev.block
                h.member_keys[a["member"]] = _b32(a["encKey"])
                h.weights.setdefault(a["member"], []).append((ev.block, int(a["weight"])))
            elif ev.name == "AuditorRegistered":
                h.auditors[a["auditor"]] = _b32(a["encKey"])
            elif ev.name == "Funded":
                h.funded += int(a["amount"])
            elif ev.name == "RoundOpened":
                rec = h._round(int(a["round"]))
                rec.start, rec.commit_deadline, rec.vote_deadline = (
                    int(a["start"]), int(a["commitDeadline"]), int(a["voteDeadline"]))
            elif ev.name == "Committed":
                eps = int(a["epsilonE6"])
                h._round(int(a["round"])).commits.append(Commitment(
                    round=int(a["round"]), peer=a["member"], update_hash=_b32(a["updateHash"]), cid=a["cid"],
                    num_samples=int(a["numSamples"]), epsilon=None if eps == NO_DP else eps / 1e6,
                    delta=int(a["deltaE18"]) / 1e18, block=ev.block, tx=ev.tx, gas_used=ev.gas_used,
                ))
            elif ev.name == "Voted":
                h._round(int(a["round"])).votes.append(Vote(
                    round=int(a["round"]), voter=a["member"], digest=_b32(a["digest"]),
                    aggregate_hash=_b32(a["aggregateHash"]), aggregate_cid=a["aggregateCid"],
                    rewards_root=_b32(a["rewardsRoot"]), rewards_cid=a["rewardsCid"],
                    excluded=tuple(a["excluded"]), weight=int(a["weight"]), block=ev.block, tx=ev.tx,
                    gas_used=ev.gas_used,
                ))
            elif ev.name == "RoundFinalized":
                rec = h._round(int(a["round"]))
                rec.status = RoundStatus.FINALIZED
                rec.finalization = Finalization(
                    round=int(a["round"]), digest=_b32(a["digest"]), aggregate_hash=_b32(a["aggregateHash"]),
                    aggregate_cid=a["aggregateCid"], rewards_root=_b32(a["rewardsRoot"]),
                    rewards_cid=a["rewardsCid"], excluded=tuple(a["excluded"]), weight_for=int(a["weightFor"]),
                    total_weight=int(a["totalWeight"]), pool=int(a["pool"]), block=ev.block,
                )
            elif ev.name == "RoundFailed":
                rec = h._round(int(a["round"]))
                rec.status = RoundStatus.FAILED
                rec.failed_by = a["closedBy"]
                rec.close_gas = ev.gas_used
            elif ev.name == "WeightUpdated":
                h.weights.setdefault(a["member"], []).append((ev.block, int(a["newWeight"])))
            elif ev.name == "Claimed":
                h.claims.append(ClaimRecord(
                    account=a["account"], rounds=tuple(int(r) for r in a["rounds"]),
                    amounts=tuple(int(x) for x in a["amounts"]), total=int(a["total"]), block=ev.block,
                    tx=ev.tx, gas_used=ev.gas_used,
                ))
        return h

    def _round(self, r: int) -> RoundRecord:
        if r not in self.rounds:
            self.rounds[r] = RoundRecord(r)
        return self.rounds[r]

    # ------------------------------------------------------------ derived views

    def round_numbers(self, selection: "RoundRange | None" = None) -> list[int]:
        rounds = sorted(self.rounds)
        return [r for r in rounds if selection is None or r in selection]

    def finalized(self) -> list[RoundRecord]:
        return [self.rounds[r] for r in sorted(self.rounds) if self.rounds[r].status is RoundStatus.FINALIZED]

    def model_before(self, r: int) -> tuple[int, bytes, str]:
        """(round, hash, CID) of the global model round `r` started from: the last finalized round before it."""
        for prev in range(r - 1, 0, -1):
            rec = self.rounds.get(prev)
            if rec is not None and rec.finalization is not None:
                return prev, rec.finalization.aggregate_hash, rec.finalization.aggregate_cid
        return 0, self.params.genesis_model_hash, self.params.genesis_model_cid

    def claimed_rounds(self, account: str) -> dict[int, int]:
        """round -> amount already claimed by `account`."""
        out: dict[int, int] = {}
        for c in self.claims:
            if c.account.lower() == account.lower():
                out.update(zip(c.rounds, c.amounts))
        return out

    def peer_history(self, address: str, rewards: dict[int, int] | None = None) -> PeerHistory:
        """A member's record; `rewards` (round -> amount, from the reward trees) fills in earnings."""
        key = address.lower()
        claimed = self.claimed_rounds(address)
        rows = []
        for r in sorted(self.rounds):
            rec = self.rounds[r]
            commit = rec.commitment_of(address)
            vote = next((v for v in rec.votes if v.voter.lower() == key), None)
            fin = rec.finalization
            agreed = None if fin is None or vote is None else vote.digest == fin.digest
            excluded = fin is not None and any(e.lower() == key for e in fin.excluded)
            if commit is None and vote is None and not excluded and r not in claimed:
                continue
            reward = None if rewards is None else rewards.get(r, 0)
            rows.append(PeerRound(
                round=r, committed=commit is not None, voted=vote is not None, agreed=agreed, excluded=excluded,
                reward=reward, claimed=r in claimed, epsilon=commit.epsilon if commit else None,
                delta=commit.delta if commit else None,
            ))
        member = next((m for m in self.members if m.lower() == key), None)
        return PeerHistory(
            address=member or address, is_member=member is not None,
            admitted_block=self.members.get(member) if member else None, rounds=tuple(rows),
            total_claimed=sum(claimed.values()),
            weight_updates=tuple(self.weights.get(member, [])) if member else (),
        )


@dataclass(frozen=True)
class RoundRange:
    """An inclusive round range `A..B` (either end may be open: `..B`, `A..`), or one round `N`."""

    first: int | None
    last: int | None

    @classmethod
    def parse(cls, text: str) -> "RoundRange":
        text = text.strip()
        try:
            if ".." in text:
                a, b = text.split("..", 1)
                rng = cls(int(a) if a.strip() else None, int(b) if b.strip() else None)
            else:
                rng = cls(int(text), int(text))
        except ValueError:
            raise ValueError(f"{text!r} is not a round range (use N, A..B, A.. or ..B)") from None
        if rng.first is not None and rng.last is not None and rng.first > rng.last:
            raise ValueError(f"empty round range {text!r}")
        return rng

    def __contains__(self, r: int) -> bool:
        return (self.first is None or r >= self.first) and (self.last is None or r <= self.last)


# ------------------------------------------------------------------------------------------------ verification


class Severity(str, enum.Enum):
    MISMATCH = "mismatch"  # the chain disagrees with the recomputation: verification fails
    WARNING = "warning"    # misbehaviour on record that the finalized outcome handled (dissent, bad blob, …)


@dataclass(frozen=True)
class Finding:
    round: int
    severity: Severity
    kind: str
    detail: str
    peer: str | None = None

    def line(self) -> str:
        who = f" peer {self.peer}" if self.peer else ""
        return f"round {self.round}{who}: {self.kind}: {self.detail}"

    def to_json(self) -> dict[str, Any]:
        return {"round": self.round, "severity": self.severity.value, "kind": self.kind, "peer": self.peer,
                "detail": self.detail}


@dataclass
class RoundVerification:
    round: int
    status: RoundStatus
    verified: bool | None  # None: not a finalized round (nothing to verify)
    findings: list[Finding] = field(default_factory=list)
    scores: dict[str, int] = field(default_factory=dict)
    amounts: dict[str, int] = field(default_factory=dict)


@dataclass
class VerificationReport:
    rounds: list[RoundVerification]

    @property
    def findings(self) -> list[Finding]:
        return [f for r in self.rounds for f in r.findings]

    @property
    def mismatches(self) -> list[Finding]:
        return [f for f in self.findings if f.severity is Severity.MISMATCH]

    @property
    def ok(self) -> bool:
        return not self.mismatches and any(r.verified for r in self.rounds)


@dataclass(frozen=True)
class SignedClaim:
    """A sender-signed statement "my update of round r is (hash, CID)" seen off chain (a gossip envelope).

    The caller checks the signature before building one; the auditor only compares it with the chain.
    """

    round: int
    sender: str
    update_hash: bytes
    cid: str
    source: str


class _BlobProblem(Exception):
    pass


def _fetch_update(store, commit: Commitment, unseal: Unseal) -> bytes:
    """The canonical update of a commitment: fetched by CID (checked), unsealed, hash-checked; _BlobProblem else."""
    from ledger_tools.blobstore import BlobIntegrityError, BlobStoreError

    try:
        sealed = store.cat(commit.cid)
    except BlobIntegrityError as exc:
        raise _BlobProblem(f"blob-cid-mismatch|bytes served for {commit.cid} do not match the CID ({exc})") from exc
    except BlobStoreError as exc:
        raise _BlobProblem(f"blob-unavailable|cannot fetch {commit.cid}: {exc}") from exc
    try:
        update = unseal(sealed, commit.peer, commit.round)
    except Exception as exc:  # every unseal failure means the same: this blob is unusable
        raise _BlobProblem(f"unseal-failed|{type(exc).__name__}: {exc}") from exc
    got = hashlib.sha256(update).digest()
    if got != commit.update_hash:
        raise _BlobProblem(
            f"update-hash-mismatch|committed {short(commit.update_hash)} but the blob at {commit.cid} "
            f"unseals to {short(got)}"
        )
    return update


def _fetch_model(store, cid: str, expected: bytes) -> bytes:
    from ledger_tools.blobstore import BlobStoreError

    try:
        return store.cat(cid, expected_sha256=expected)
    except BlobStoreError as exc:
        raise _BlobProblem(str(exc)) from exc


def _fetch_reward_tree(store, fin: Finalization) -> "consensus.RewardTree":
    from ledger_tools.rewards import RewardTreeError, load_reward_tree

    try:
        return load_reward_tree(store, fin.round, fin.rewards_cid, fin.rewards_root)
    except RewardTreeError as exc:
        raise _BlobProblem(str(exc)) from exc


def _excluded_diff(chain: Sequence[str], mine: Sequence[str]) -> str:
    a, b = {x.lower(): x for x in chain}, {x.lower(): x for x in mine}
    parts = []
    extra = [a[k] for k in a if k not in b]
    missing = [b[k] for k in b if k not in a]
    if extra:
        parts.append("excluded on chain only: " + ", ".join(extra))
    if missing:
        parts.append("excluded by the recomputation only: " + ", ".join(missing))
    return "; ".join(parts)


def verify_round(
    history: LedgerHistory,
    r: int,
    *,
    store,
    unseal: Unseal,
    previous_model: bytes | None = None,
    spec: "consensus.ModelSpec | None" = None,
) -> tuple[RoundVerification, bytes | None]:
    """Re-derive finalized round `r`; returns the verification and the chain's model after it (when known)."""
    rec = history.rounds[r]
    out = RoundVerification(r, rec.status, None)
    fin = rec.finalization
    _flag_dissent(rec, out)
    if fin is None:
        return out, None
    out.verified = False
    p = history.params

    def mismatch(kind: str, detail: str, peer: str | None = None) -> None:
        out.findings.append(Finding(r, Severity.MISMATCH, kind, detail, peer))

    if previous_model is None:
        prev_round, prev_hash, prev_cid = history.model_before(r)
        try:
            previous_model = _fetch_model(store, prev_cid, prev_hash)
        except _BlobProblem as exc:
            mismatch("previous-model-unavailable",
                     f"model of round {prev_round} ({prev_cid}) cannot be fetched and checked: {exc}")
            return out, None

    blob_findings: list[Finding] = []
    updates = []
    for c in sorted(rec.commits, key=lambda c: _addr_key(c.peer)):
        try:
            update: bytes | None = _fetch_update(store, c, unseal)
        except _BlobProblem as exc:
            kind, _, detail = str(exc).partition("|")
            blob_findings.append(Finding(r, Severity.WARNING, kind, detail, c.peer))
            update = None
        updates.append(CommittedUpdate(c.peer, c.update_hash, c.num_samples, update))
    _flag_duplicates(rec, out)

    try:
        outcome = compute_round_outcome(
            round=r, previous_model=previous_model, updates=updates, rule=p.rule, rule_param=p.rule_param, f=p.f,
            reward_pool=fin.pool, sample_cap=p.sample_cap, spec=spec,
        )
    except RoundNotAggregatable as exc:
        out.findings.extend(_escalate(blob_findings))
        mismatch("not-aggregatable", f"the chain finalized the round but the recomputation cannot aggregate: {exc}")
        return out, None

    out.scores = dict(zip(outcome.peers, outcome.scores))
    out.amounts = dict(zip(outcome.peers, outcome.amounts))
    before = len(out.findings)
    if outcome.aggregate_hash != fin.aggregate_hash:
        mismatch("aggregate-hash", f"chain {short(fin.aggregate_hash)}, recomputed {short(outcome.aggregate_hash)}")
    if [x.lower() for x in outcome.excluded] != [x.lower() for x in fin.excluded]:
        mismatch("excluded-set", _excluded_diff(fin.excluded, outcome.excluded))
    tree = None
    try:
        tree = _fetch_reward_tree(store, fin)
    except _BlobProblem as exc:
        mismatch("reward-tree", f"published reward tree {fin.rewards_cid or '(none)'}: {exc}")
    if outcome.rewards_root != fin.rewards_root:
        diffs = []
        if tree is not None:
            paid = dict((a.lower(), x) for a, x in tree.values)
            for peer, amount in zip(outcome.peers, outcome.amounts):
                got = paid.pop(peer.lower(), 0)
                if got != amount:
                    diffs.append((peer, f"chain's reward tree pays {got} wei, recomputation {amount} wei"))
            diffs.extend((a, f"chain's reward tree pays {x} wei to a non-committer") for a, x in
                         ((next((v[0] for v in tree.values if v[0].lower() == k), k), x) for k, x in paid.items()))
        mismatch("rewards-root", f"chain {short(fin.rewards_root)}, recomputed {short(outcome.rewards_root)}")
        for peer, detail in diffs:
            mismatch("reward-amount", detail, peer)
    if outcome.digest != fin.digest:
        mismatch("digest", f"finalized {short(fin.digest)}, recomputed {short(outcome.digest)}")
    if outcome.aggregate_hash == fin.aggregate_hash:
        try:
            _fetch_model(store, fin.aggregate_cid, fin.aggregate_hash)
        except _BlobProblem as exc:
            mismatch("aggregate-cid", f"finalized model at {fin.aggregate_cid} does not match its hash: {exc}")
    # Causes before effects: a bad blob that changed the outcome is a mismatch naming its peer.
    changed = len(out.findings) > before
    out.findings[before:before] = _escalate(blob_findings) if changed else blob_findings
    out.verified = not any(f.severity is Severity.MISMATCH for f in out.findings)
    return out, (outcome.new_model if outcome.aggregate_hash == fin.aggregate_hash else None)


def _escalate(findings: Sequence[Finding]) -> list[Finding]:
    return [Finding(f.round, Severity.MISMATCH, f.kind, f.detail, f.peer) for f in findings]


def _flag_dissent(rec: RoundRecord, out: RoundVerification) -> None:
    fin = rec.finalization
    if fin is None:
        return
    for v in rec.votes:
        if v.digest == fin.digest:
            continue
        what = []
        if v.aggregate_hash != fin.aggregate_hash:
            what.append(f"aggregate {short(v.aggregate_hash)}")
        if v.rewards_root != fin.rewards_root:
            what.append(f"rewards root {short(v.rewards_root)}")
        if [x.lower() for x in v.excluded] != [x.lower() for x in fin.excluded]:
            what.append("excluded {" + ", ".join(short(x) for x in v.excluded) + "}")
        out.findings.append(Finding(rec.round, Severity.WARNING, "dissenting-vote",
                                    f"voted {short(v.digest)} ({'; '.join(what)}), finalized {short(fin.digest)}",
                                    v.voter))


def _flag_duplicates(rec: RoundRecord, out: RoundVerification) -> None:
    """Two members committing the same update: copying (free-riding) or one blob under two names."""
    by_hash: dict[bytes, list[str]] = defaultdict(list)
    for c in rec.commits:
        by_hash[c.update_hash].append(c.peer)
    for h, peers in by_hash.items():
        if len(peers) > 1:
            for peer in peers:
                others = ", ".join(p for p in peers if p != peer)
                out.findings.append(Finding(rec.round, Severity.WARNING, "duplicate-update",
                                            f"committed update {short(h)} also committed by {others}", peer))
    counts = Counter(c.peer.lower() for c in rec.commits)
    for c in rec.commits:
        if counts[c.peer.lower()] > 1:
            out.findings.append(Finding(rec.round, Severity.WARNING, "equivocation",
                                        f"committed more than once on chain ({short(c.update_hash)})", c.peer))


def equivocation_findings(history: LedgerHistory, evidence: Iterable[SignedClaim]) -> list[Finding]:
    """Signed off-chain claims (gossip envelopes) that contradict the sender's commitment, or each other."""
    seen: dict[tuple[int, str], list[SignedClaim]] = defaultdict(list)
    for claim in evidence:
        seen[(claim.round, claim.sender.lower())].append(claim)
    findings = []
    for (r, _), claims in sorted(seen.items()):
        sender = claims[0].sender
        distinct = {(c.update_hash, c.cid) for c in claims}
        if len(distinct) > 1:
            findings.append(Finding(r, Severity.WARNING, "equivocation",
                                    f"signed {len(distinct)} different updates for one round: "
                                    + ", ".join(f"{short(h)} in {c.source}" for c in claims for h in [c.update_hash]),
                                    sender))
        rec = history.rounds.get(r)
        commit = rec.commitment_of(sender) if rec else None
        for c in claims:
            if commit is not None and c.update_hash != commit.update_hash:
                findings.append(Finding(r, Severity.WARNING, "equivocation",
                                        f"gossiped update {short(c.update_hash)} ({c.source}) but committed "
                                        f"{short(commit.update_hash)}", sender))
    return findings


def verify_history(
    history: LedgerHistory,
    *,
    store,
    unseal: Unseal,
    rounds: RoundRange | None = None,
    spec: "consensus.ModelSpec | None" = None,
    evidence: Iterable[SignedClaim] = (),
    progress: Callable[[RoundVerification], None] | None = None,
) -> VerificationReport:
    """Verify every finalized round in `rounds` (all by default); chained, so each model is fetched once."""
    results = []
    model: bytes | None = None
    model_round = -1
    for r in history.round_numbers(rounds):
        prev_round, _, _ = history.model_before(r)
        result, after = verify_round(
            history, r, store=store, unseal=unseal, spec=spec,
            previous_model=model if model_round == prev_round else None,
        )
        if after is not None:
            model, model_round = after, r
        results.append(result)
        if progress is not None:
            progress(result)
    extra = equivocation_findings(history, evidence)
    by_round = {res.round: res for res in results}
    for f in extra:
        if f.round in by_round:
            by_round[f.round].findings.append(f)
    return VerificationReport(results)


# ------------------------------------------------------------------------------------------------ loading


def load_history(ledger, *, cache_dir=None, confirmations: int = 0) -> tuple[LedgerHistory, "SyncStats"]:
    """Sync the event cache of `ledger` (a `chain.FederationLedger`) and rebuild its history from it.

    Raises `chain.LedgerUnavailable` when the RPC is unreachable or no contract is at the address, and
    `ledger_cache.LedgerCacheError` when the node fails while reading events.
    """
    from ledger_tools.ledger_cache import LedgerCache, SyncStats, cache_path  # noqa: F401  (SyncStats: type)

    ledger.check()
    chain_id = int(ledger.w3.eth.chain_id)
    params = FederationParams.from_view(ledger.params().as_tuple())
    path = cache_path(cache_dir, chain_id, ledger.address)
    with LedgerCache(ledger.w3, ledger.contract, path, confirmations=confirmations,
                     from_block=ledger.deploy_block) as cache:
        stats = cache.sync()
        events = cache.events()
    return LedgerHistory.from_events(events, params, chain_id=chain_id, address=ledger.address), stats
