"""Independent re-verification of a federation's history: every round re-derived from chain + IPFS.

`verify_history(...)` re-derives each finalized round with the one shared derivation
(`round_outcome.compute_round_outcome`, with the federation's recorded rule, f and codec scale) and lists
every difference as a `Finding` naming the round, the peer (where one is to blame) and what differs. Failed
rounds are checked too: the ledger must show neither a finalization nor a claim for them. Signed gossip
envelopes (`SignedClaim`) that contradict a sender's commitment are flagged as equivocation.

Unsealing is injected (`Unseal`): it lives with the peer's crypto, and the auditor's key is the caller's.
"""
from __future__ import annotations

import enum
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import consensus
from consensus.commitment import CommittedUpdate
from consensus.round_outcome import RoundNotAggregatable, RoundOutcome, compute_round_outcome
from ledger_tools.audit.history import LedgerHistory, RoundRange, RoundRecord, RoundStatus, short
from ledger_tools.chain import Finalization
from ledger_tools.updates import Unseal, UpdateUnusable, fetch_update

#: unseal(sealed_blob, sender, round) -> canonical update bytes; raises on anything wrong.


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

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> "Finding":
        """From `to_json`'s form (as `audit verify --json` prints it); KeyError/ValueError when malformed."""
        return cls(int(doc["round"]), Severity(doc["severity"]), str(doc["kind"]), str(doc["detail"]), doc.get("peer"))


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


def _fetch_model(store, cid: str, expected: bytes) -> bytes:
    from ledger_tools.blob_caps import ModelBlobError, fetch_model

    try:
        return fetch_model(store, cid, expected)
    except ModelBlobError as exc:
        raise _BlobProblem(str(exc)) from exc


def _fetch_reward_tree(store, fin: Finalization) -> "consensus.RewardTree":
    from ledger_tools.audit.rewards import RewardTreeError, load_reward_tree

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
    """Check round `r`; returns the verification and the chain's model after it (when re-derived).

    A finalized round is re-derived from chain + IPFS; a failed round must have no finalization and no claims;
    an open round has nothing to check yet (`verified` None).
    """
    rec = history.rounds[r]
    out = RoundVerification(r, rec.status, None)
    _flag_dissent(rec, out)
    _flag_claims(history, rec, out)
    if rec.failed_by is not None:  # closed as failed: nothing to re-derive, whatever else the log claims
        _check_failed(rec, out)
        out.verified = not _has_mismatch(out)
        return out, None
    fin = rec.finalization
    if fin is None:
        return out, None
    out.verified = False
    p = history.params_for(r)  # the round's own rule, f, quorum (changed by vote from some round on)

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
    for c in sorted(rec.commits, key=lambda c: int(c.member, 16)):
        try:
            update: bytes | None = fetch_update(store, c, unseal)
        except UpdateUnusable as exc:
            blob_findings.append(Finding(r, Severity.WARNING, exc.kind, exc.detail, c.member))
            update = None
        updates.append(CommittedUpdate(c, update))
    for c in rec.commits:
        if c.member in rec.commits_after_vote:
            out.findings.append(Finding(r, Severity.WARNING, "commit-after-vote", (
                f"committed at block {c.block_number}, after voting on the round had begun (the commit phase "
                "re-opened when a member was admitted): the voters before it could not aggregate it"), c.member))
    _flag_duplicates(rec, out)
    twice = sorted({c.member for c in rec.commits
                    if sum(d.member.lower() == c.member.lower() for d in rec.commits) > 1})
    if twice:  # the contract accepts one commitment per member and round: this ledger broke that promise
        out.findings.extend(_escalate(blob_findings))
        for member in twice:
            mismatch("double-commit", "the ledger records more than one commitment of this member for the round; "
                                      "the round cannot be re-derived", member)
        return out, None

    def derive(counted: list[CommittedUpdate]) -> RoundOutcome:
        return compute_round_outcome(
            round=r, previous_model=previous_model, updates=counted, rule=p.rule, rule_param=p.rule_param, f=p.f,
            reward_pool=fin.pool_wei, sample_cap=p.sample_cap, spec=spec, scale_bits=p.scale_bits,
        )

    try:
        outcome = derive(updates)
        if rec.commits_after_vote and outcome.digest != fin.digest:
            # the voters may have aggregated the commitments made before voting began: that outcome counts too
            before = derive([u for u in updates if u.commitment.member not in rec.commits_after_vote])
            outcome = before if before.digest == fin.digest else outcome
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
    if tree is not None:
        for account, claimed in history.claims_of_round(r):
            if claimed != tree.amount_of(account):
                mismatch("claim-amount", f"claimed {claimed} wei, the reward tree pays {tree.amount_of(account)} wei",
                         account)
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
    out.verified = not _has_mismatch(out)
    return out, (outcome.new_model if outcome.aggregate_hash == fin.aggregate_hash else None)


def _has_mismatch(out: RoundVerification) -> bool:
    return any(f.severity is Severity.MISMATCH for f in out.findings)


def _check_failed(rec: RoundRecord, out: RoundVerification) -> None:
    """A failed round keeps the previous model and pays nothing: no finalization may be on record."""
    if rec.finalization is not None:
        out.findings.append(Finding(rec.round, Severity.MISMATCH, "failed-but-finalized",
                                    f"closed as failed by {rec.failed_by} but also finalized "
                                    f"{short(rec.finalization.digest)} (block {rec.finalization.block_number})"))


def _flag_claims(history: LedgerHistory, rec: RoundRecord, out: RoundVerification) -> None:
    """Rewards are claimable only in finalized rounds; a claim anywhere else means the contract paid wrongly."""
    if rec.status is RoundStatus.FINALIZED and rec.failed_by is None:
        return
    for account, amount in history.claims_of_round(rec.round):
        out.findings.append(Finding(rec.round, Severity.MISMATCH, "claim-on-unfinalized-round",
                                    f"claimed {amount} wei from a {rec.status.value} round", account))


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
                                    v.member))


def _flag_duplicates(rec: RoundRecord, out: RoundVerification) -> None:
    """Two members committing the same update: copying (free-riding) or one blob under two names."""
    by_hash: dict[bytes, list[str]] = defaultdict(list)
    for c in rec.commits:
        by_hash[c.update_hash].append(c.member)
    for h, peers in by_hash.items():
        if len(peers) > 1:
            for peer in peers:
                others = ", ".join(p for p in peers if p != peer)
                out.findings.append(Finding(rec.round, Severity.WARNING, "duplicate-update",
                                            f"committed update {short(h)} also committed by {others}", peer))
    counts = Counter(c.member.lower() for c in rec.commits)
    for c in rec.commits:
        if counts[c.member.lower()] > 1:
            out.findings.append(Finding(rec.round, Severity.WARNING, "equivocation",
                                        f"committed more than once on chain ({short(c.update_hash)})", c.member))


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
    """Verify every finalized round in `rounds` (all by default); chained, so each model is fetched once.
    Each round's tally is also held to the member set in force when it was cast (`audit.tally`)."""
    from ledger_tools.audit.tally import tally_findings  # tally imports this module's Finding

    by_round: dict[int, list[Finding]] = defaultdict(list)
    for finding in equivocation_findings(history, evidence):
        by_round[finding.round].append(finding)
    results = []
    model: bytes | None = None
    model_round = -1
    for r in history.round_numbers(rounds):
        prev_round, _, _ = history.model_before(r)
        result, after = verify_round(
            history, r, store=store, unseal=unseal, spec=spec,
            previous_model=model if model_round == prev_round else None,
        )
        result.findings.extend(by_round.get(r, ()))
        tally = tally_findings(history, history.rounds[r])  # the member set in force: from the log alone
        result.findings.extend(tally)
        if tally and result.verified is not None:
            result.verified = False
        if after is not None:
            model, model_round = after, r
        results.append(result)
        if progress is not None:
            progress(result)
    return VerificationReport(results)
