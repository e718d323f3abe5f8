"""A federation's history as its ledger records it, rebuilt from the contract's event log alone.

`LedgerHistory.from_events(...)` is pure (no I/O): it turns the cached event log (see `ledger_cache`) plus the
`parameters()` view into rounds, commitments, votes, finalizations and claims. The records are the chain
binding's own (`chain.Commitment`, `chain.Vote`, ...), decoded by their `from_event`, so the binding and the
auditor can never read an event differently. `load_history` is the one function that touches the node.
"""
from __future__ import annotations

import dataclasses
import enum
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from ledger_tools.chain import Claim, Commitment, Finalization, LedgerParams, Vote, WeightUpdate
from ledger_tools.ledger_cache import LedgerEvent, SyncStats


def short(value: bytes | str, n: int = 10) -> str:
    """A hash or address cut to `n` hex digits for tables and messages."""
    text = value if isinstance(value, str) else "0x" + value.hex()
    return text if len(text) <= n + 2 else text[: n + 2] + "…"


def b32(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else bytes.fromhex(value.removeprefix("0x"))


@dataclass(frozen=True)
class VoteInForce:
    """An on-time vote as the tally counted it, next to what the member set in force said when it was cast."""

    member: str
    digest: bytes
    counted: int        # weight the ledger added to the tally (`Voted.weight`)
    was_member: bool    # a member at that point of the event log (admitted, not removed)
    weight_then: int    # its weight then, replayed from admissions and reputation updates
    block: int


@dataclass(frozen=True)
class MembershipEvent:
    """A member entering or leaving the ledger's member set (bootstrap, proposal, leave or slash: see
    `audit.governance` for the cause)."""

    block: int
    log_index: int
    tx: str
    kind: str           # "admitted" | "removed"
    member: str
    weight: int
    total_weight: int   # the ledger's total weight after it, as its event reports


class RoundStatus(str, enum.Enum):
    OPEN = "open"
    FINALIZED = "finalized"
    FAILED = "failed"


@dataclass
class RoundRecord:
    """Everything the ledger says about one round."""

    round: int
    start: int = 0
    opened_block: int = 0
    commit_deadline: int = 0
    vote_deadline: int = 0
    status: RoundStatus = RoundStatus.OPEN
    commits: list[Commitment] = field(default_factory=list)
    votes: list[Vote] = field(default_factory=list)
    finalization: Finalization | None = None
    failed_by: str | None = None
    failed_block: int = 0
    close_gas: int = 0
    in_force: list[VoteInForce] = field(default_factory=list)  # the on-time votes, against the member set then
    # members whose commitment came after the round's first on-time vote: possible only when an admission raised
    # the member count after every member had committed (the commit phase re-opened); no voter before it saw it
    commits_after_vote: list[str] = field(default_factory=list)
    total_weight_then: int | None = None  # replayed total weight of the members in force at finalization

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

    def commitment_of(self, member: str) -> Commitment | None:
        return next((c for c in self.commits if c.member.lower() == member.lower()), None)

    def vote_of(self, member: str) -> Vote | None:
        return next((v for v in self.votes if v.member.lower() == member.lower()), None)


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


@dataclass
class LedgerHistory:
    """A federation's whole history as recorded by the ledger."""

    chain_id: int
    address: str
    params: LedgerParams
    members: dict[str, int] = field(default_factory=dict)  # address -> admission block (removed ones too)
    removed: dict[str, int] = field(default_factory=dict)  # address -> removal block (if not re-admitted)
    membership: list[MembershipEvent] = field(default_factory=list)  # admissions and removals, in chain order
    member_keys: dict[str, bytes] = field(default_factory=dict)
    auditors: dict[str, bytes] = field(default_factory=dict)  # address -> X25519 key
    rounds: dict[int, RoundRecord] = field(default_factory=dict)
    claims: list[Claim] = field(default_factory=list)
    weights: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # member -> [(block, weight)]
    funded: int = 0
    to_block: int = 0  # the last block the history was read up to (0: unknown)
    # round parameters changed by vote: (effective round, new values), in log order; `first_params` are round 1's
    param_changes: list[tuple[int, dict[str, int | str]]] = field(default_factory=list)
    first_params: LedgerParams | None = None

    @classmethod
    def from_events(
        cls, events: Iterable[LedgerEvent], params: LedgerParams, *, chain_id: int, address: str
    ) -> "LedgerHistory":
        """Replay the event log in chain order; events this version does not know are ignored."""
        h = cls(chain_id=chain_id, address=address, params=params)
        in_force: dict[str, int] = {}  # the member set in force at this point of the log: member -> weight
        joining: dict[str, int] = {}  # admitted while a round is open: in force from the next RoundOpened
        for ev in events:
            a = ev.args
            if ev.name == "MemberAdmitted":
                h.members[a["member"]] = ev.block
                h.removed.pop(a["member"], None)
                h.member_keys[a["member"]] = b32(a["encKey"])
                h.weights.setdefault(a["member"], []).append((ev.block, int(a["weight"])))
                joining[a["member"]] = int(a["weight"])
                h.membership.append(MembershipEvent(ev.block, ev.log_index, ev.tx, "admitted", a["member"],
                                                    int(a["weight"]), int(a["totalWeight"])))
            elif ev.name == "MemberRemoved":
                h.removed[a["member"]] = ev.block
                in_force.pop(a["member"], None)
                joining.pop(a["member"], None)
                h.membership.append(MembershipEvent(ev.block, ev.log_index, ev.tx, "removed", a["member"],
                                                    int(a["weight"]), int(a["totalWeight"])))
            elif ev.name == "AuditorRegistered":
                h.auditors[a["auditor"]] = b32(a["encKey"])
            elif ev.name == "AuditorRemoved":
                h.auditors.pop(a["auditor"], None)
            elif ev.name == "Funded":
                h.funded += int(a["amount"])
            elif ev.name == "RoundOpened":
                rec = h._round(int(a["round"]))
                rec.start, rec.commit_deadline, rec.vote_deadline = (
                    int(a["start"]), int(a["commitDeadline"]), int(a["voteDeadline"]))
                rec.opened_block = ev.block
                in_force.update(joining)  # a round counts the members admitted before it opened
                joining.clear()
            elif ev.name == "Committed":
                rec = h._round(int(a["round"]))
                rec.commits.append(Commitment.from_event(a, ev.block, ev.tx, ev.gas_used))
                if rec.in_force:
                    rec.commits_after_vote.append(rec.commits[-1].member)
            elif ev.name == "Voted":
                vote = Vote.from_event(a, ev.block, ev.tx, ev.gas_used)
                rec = h._round(int(a["round"]))
                rec.votes.append(vote)
                if not vote.late:
                    rec.in_force.append(VoteInForce(vote.member, vote.digest, vote.weight, vote.member in in_force,
                                                    in_force.get(vote.member, 0), ev.block))
            elif ev.name == "RoundFinalized":
                rec = h._round(int(a["round"]))
                rec.status = RoundStatus.FINALIZED
                rec.finalization = Finalization.from_event(a, ev.block, ev.tx)
                rec.total_weight_then = sum(in_force.values())
            elif ev.name == "RoundFailed":
                # The finalization (if a broken ledger emitted both) stays on record for the verifier to flag.
                rec = h._round(int(a["round"]))
                rec.status = RoundStatus.FAILED
                rec.failed_by = a["closedBy"]
                rec.failed_block = ev.block
                rec.close_gas = ev.gas_used
            elif ev.name == "WeightUpdated":
                update = WeightUpdate.from_event(a, ev.block, ev.tx)
                h.weights.setdefault(update.member, []).append((ev.block, update.new_weight))
                if update.member in in_force:
                    in_force[update.member] = update.new_weight
            elif ev.name == "RoundParamsChanged":
                h.param_changes.append((int(a["effectiveRound"]), {
                    "rule": a["rule"], "rule_param": int(a["ruleParam"]), "f": int(a["f"]),
                    "quorum_bps": int(a["quorumBps"]), "commit_period": int(a["commitPeriod"]),
                    "vote_period": int(a["votePeriod"]), "reward_per_round_wei": int(a["rewardPerRound"])}))
            elif ev.name == "Claimed":
                h.claims.append(Claim.from_event(a, ev.block, ev.tx, ev.gas_used))
        return h

    def _round(self, r: int) -> RoundRecord:
        if r not in self.rounds:
            self.rounds[r] = RoundRecord(r)
        return self.rounds[r]

    def params_for(self, r: int) -> LedgerParams:
        """The parameters round `r` ran under: round 1's, with every change voted in for a round up to `r`."""
        if not self.param_changes:
            return self.params
        params = self.first_params or self.params
        for effective, values in self.param_changes:
            if effective <= r:
                params = dataclasses.replace(params, **values)
        return params

    def round_at(self, block: int) -> int:
        """The round open at `block` (0: before the first round opened)."""
        opened = [r for r, rec in self.rounds.items() if rec.opened_block and rec.opened_block <= block]
        return max(opened, default=0)

    def round_numbers(self, selection: RoundRange | None = None) -> list[int]:
        return [r for r in sorted(self.rounds) if selection is None or r in selection]

    def finalized(self) -> list[RoundRecord]:
        return [self.rounds[r] for r in sorted(self.rounds) if self.rounds[r].status is RoundStatus.FINALIZED]

    def failed(self) -> list[RoundRecord]:
        return [self.rounds[r] for r in sorted(self.rounds) if self.rounds[r].status is RoundStatus.FAILED]

    def reward_for(self, r: int) -> int:
        """The reward per round round `r` ran under (a vote may change it from one round to the next)."""
        return self.params_for(r).reward_per_round_wei

    def is_underpaid(self, rec: RoundRecord) -> bool:
        """Whether finalized round `rec` reserved less than its own round's reward per round."""
        return rec.finalization is not None and rec.finalization.pool_wei < self.reward_for(rec.round)

    def underpaid(self) -> list[RoundRecord]:
        """Finalized rounds whose reward pool was less than their round's `reward_per_round_wei` (0 when the
        contract ran dry): the contract reserves what its balance allows, so contributors were paid short."""
        return [rec for rec in self.finalized() if self.is_underpaid(rec)]

    def model_before(self, r: int) -> tuple[int, bytes, str]:
        """(round, hash, CID) of the global model round `r` started from: the last finalized round before it."""
        for prev in range(r - 1, 0, -1):
            rec = self.rounds.get(prev)
            if rec is not None and rec.status is RoundStatus.FINALIZED and rec.finalization is not None:
                return prev, rec.finalization.aggregate_hash, rec.finalization.aggregate_cid
        return 0, self.params.genesis_model_hash, self.params.genesis_model_cid

    def claimed_rounds(self, account: str) -> dict[int, int]:
        """round -> amount already claimed by `account`."""
        out: dict[int, int] = {}
        for c in self.claims:
            if c.account.lower() == account.lower():
                out.update(zip(c.rounds, c.amounts))
        return out

    def claims_of_round(self, r: int) -> list[tuple[str, int]]:
        """(account, amount) of every claim that included round `r`."""
        return [(c.account, amount) for c in self.claims for cr, amount in zip(c.rounds, c.amounts) if cr == r]


def load_history(ledger, *, cache_dir=None, confirmations: int = 0) -> tuple[LedgerHistory, SyncStats]:
    """Sync the event cache of `ledger` (a `chain.FederationLedger`) and rebuild its history from it.

    Raises `chain.LedgerUnavailable` when the RPC is unreachable or no contract is at the address, and
    `ledger_cache.LedgerCacheError` when the node fails while reading events.
    """
    from ledger_tools.ledger_cache import LedgerCache, cache_path

    ledger.check()
    chain_id = int(ledger.w3.eth.chain_id)
    params = ledger.params()
    path = cache_path(cache_dir, chain_id, ledger.address)
    with LedgerCache(ledger.w3, ledger.contract, path, confirmations=confirmations,
                     from_block=ledger.deploy_block) as cache:
        stats = cache.sync()
        events = cache.events()
    history = LedgerHistory.from_events(events, params, chain_id=chain_id, address=ledger.address)
    history.to_block = stats.to_block
    if history.param_changes:  # `ledger.params()` are the current round's; older rounds start from round 1's
        history.first_params = ledger.params_for_round(1)
    return history, stats
