"""The federation's governance as the auditor sees it: who entered or left the member set and why (deployment,
proposal, exit, slashing), stakes and slashes over time, and the proposals with their votes.

The ledger's own log says *that* the member set changed (`MemberAdmitted`, `MemberRemoved`, replayed into
`LedgerHistory.membership`); the governor's log (`FederationGovernor`, the ledger's owner) says *why*: a change in
the same transaction as `ProposalExecuted(id)` came from proposal `id`, one next to `Slashed(member)` from a slash,
one next to `WithdrawRequested(member)` alone from the member leaving. `GovernanceLog.build` is pure;
`load_governance` is the one function that reads the node (it finds the governor as the ledger's owner, and gives
up — None — for a ledger owned by an account, as deployed before governance).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ledger_tools.audit.history import LedgerHistory
from ledger_tools.ledger_cache import LedgerEvent

KINDS = {1: "admit", 2: "remove", 3: "add-auditor", 4: "remove-auditor", 5: "param"}
OFFENCES = {1: "equivocation", 2: "commit mismatch"}
ETH = 10**18


@dataclass(frozen=True)
class GovEvent:
    """One line of the governance timeline, in chain order."""

    block: int
    log_index: int
    round: int          # the round open at that block (0: before round 1 opened)
    kind: str           # admitted | removed | staked | leaving | withdrawn | slashed | proposed | executed | param
    account: str
    detail: str
    tx: str = ""

    def to_json(self) -> dict[str, object]:
        return {"block": self.block, "round": self.round, "kind": self.kind, "account": self.account,
                "detail": self.detail, "tx": self.tx}


@dataclass
class ProposalRecord:
    id: int
    kind: str
    proposer: str
    account: str
    block: int
    votes_for: int = 0
    votes_against: int = 0
    voters: list[str] = field(default_factory=list)
    executed_block: int | None = None


@dataclass(frozen=True)
class SlashRecord:
    member: str
    round: int
    offence: str
    reporter: str
    amount: int
    reward: int
    removed: bool
    block: int
    tx: str


@dataclass
class GovernanceLog:
    """Governance events merged with the ledger's membership changes; `governor` is "" for an owner-run ledger."""

    governor: str
    timeline: list[GovEvent] = field(default_factory=list)
    proposals: dict[int, ProposalRecord] = field(default_factory=dict)
    slashes: list[SlashRecord] = field(default_factory=list)
    stakes: dict[str, int] = field(default_factory=dict)  # account -> stake now (after slashes and withdrawals)

    def membership_changes(self, *, include_deployment: bool = False) -> list[GovEvent]:
        return [e for e in self.timeline if e.kind in ("admitted", "removed")
                and (include_deployment or not e.detail.startswith("at deployment"))]

    def to_json(self) -> dict[str, object]:
        return {"governor": self.governor, "timeline": [e.to_json() for e in self.timeline],
                "stakes_wei": {a: str(v) for a, v in self.stakes.items()},
                "slashes": [{"member": s.member, "round": s.round, "offence": s.offence, "reporter": s.reporter,
                             "amount_wei": str(s.amount), "reward_wei": str(s.reward), "removed": s.removed,
                             "block": s.block, "tx": s.tx} for s in self.slashes],
                "proposals": [{"id": p.id, "kind": p.kind, "proposer": p.proposer, "account": p.account,
                               "block": p.block, "for": p.votes_for, "against": p.votes_against,
                               "voters": p.voters, "executed_block": p.executed_block}
                              for p in self.proposals.values()]}

    @classmethod
    def build(cls, history: LedgerHistory, governor_events: Iterable[LedgerEvent], *, governor: str = "",
              deploy_block: int | None = None) -> "GovernanceLog":
        """Merge `history.membership` with the governor's events; `deploy_block` (default: the first admission's)
        marks the bootstrap members."""
        log = cls(governor=governor)
        gov_events = list(governor_events)
        by_tx: dict[str, list[LedgerEvent]] = {}
        for ev in gov_events:
            by_tx.setdefault(ev.tx, []).append(ev)
        first = deploy_block if deploy_block is not None else min((m.block for m in history.membership), default=0)
        rows: list[GovEvent] = []
        for m in history.membership:
            cause = _cause(m.kind, m.member, by_tx.get(m.tx, []), at_deployment=m.block == first,
                           governed=bool(governor))
            rows.append(GovEvent(m.block, m.log_index, history.round_at(m.block), m.kind, m.member,
                                 f"{cause}; weight {m.weight / 1e6:g}, total weight {m.total_weight / 1e6:g}", m.tx))
        for ev in gov_events:
            row = log._apply(ev, history.round_at(ev.block))
            if row is not None:
                rows.append(row)
        log.timeline = sorted(rows, key=lambda e: (e.block, e.log_index))
        return log

    def _apply(self, ev: LedgerEvent, round_: int) -> GovEvent | None:
        a = ev.args

        def row(kind: str, account: str, detail: str) -> GovEvent:
            return GovEvent(ev.block, ev.log_index, round_, kind, account, detail, ev.tx)

        if ev.name == "ProposalCreated":
            kind = KINDS.get(int(a["kind"]), str(a["kind"]))
            self.proposals[int(a["id"])] = ProposalRecord(int(a["id"]), kind, a["proposer"], a["account"], ev.block)
            what = (f"param {int(a['param'])} = {int(a['value'])}" if kind == "param" else f"{kind} {a['account']}")
            return row("proposed", a["proposer"], f"proposal #{int(a['id'])}: {what}")
        if ev.name == "VoteCast":
            p = self.proposals.get(int(a["id"]))
            if p is not None:
                p.voters.append(a["voter"])
                if a["support"]:
                    p.votes_for += int(a["weight"])
                else:
                    p.votes_against += int(a["weight"])
            return None
        if ev.name == "ProposalExecuted":
            p = self.proposals.get(int(a["id"]))
            if p is not None:
                p.executed_block = ev.block
            what = f" ({p.kind} {p.account})" if p is not None else ""
            return row("executed", a["executor"], f"proposal #{int(a['id'])}{what}")
        if ev.name == "ParameterChanged":
            return row("param", self.governor, f"governance parameter {int(a['param'])} = {int(a['value'])}")
        if ev.name == "Staked":
            self.stakes[a["account"]] = int(a["total"])
            return row("staked", a["account"], f"+{int(a['amount']) / ETH:g} ETH, stake {int(a['total']) / ETH:g} ETH")
        if ev.name == "WithdrawRequested":
            return row("leaving", a["account"], f"stake {int(a['amount']) / ETH:g} ETH unlocks at {int(a['unlockAt'])}")
        if ev.name == "Withdrawn":
            self.stakes[a["account"]] = max(self.stakes.get(a["account"], 0) - int(a["amount"]), 0)
            return row("withdrawn", a["account"], f"{int(a['amount']) / ETH:g} ETH")
        if ev.name == "Slashed":
            s = SlashRecord(a["member"], int(a["round"]), OFFENCES.get(int(a["offence"]), str(a["offence"])),
                            a["reporter"], int(a["amount"]), int(a["reward"]), bool(a["removed"]), ev.block, ev.tx)
            self.slashes.append(s)
            self.stakes[s.member] = max(self.stakes.get(s.member, 0) - s.amount, 0)
            return row("slashed", s.member, f"{s.offence} in round {s.round}: {s.amount / ETH:g} ETH taken, "
                                            f"{s.reward / ETH:g} ETH to reporter {s.reporter}"
                                            + ("; removed from the members" if s.removed else ""))
        return None


def _cause(kind: str, member: str, same_tx: list[LedgerEvent], *, at_deployment: bool, governed: bool) -> str:
    """Why the member set changed, from the governor's events in the same transaction."""
    executed = next((e for e in same_tx if e.name == "ProposalExecuted"), None)
    if executed is not None:
        return f"by proposal #{int(executed.args['id'])}"
    if any(e.name == "Slashed" and e.args.get("member") == member for e in same_tx):
        return "by slashing"
    if kind == "removed" and any(e.name == "WithdrawRequested" and e.args.get("account") == member for e in same_tx):
        return "left (stake withdrawal started)"
    if at_deployment and kind == "admitted":
        return "at deployment"
    return "by the governor" if governed else "by the ledger's owner account"


def load_governance(ledger, history: LedgerHistory, *, cache_dir: Path | str | None = None) -> GovernanceLog:
    """The governance log of `ledger` (a `chain.FederationLedger`): its owner's events if the owner is this
    ledger's FederationGovernor; otherwise (an owner-run ledger) the membership changes alone, `governor` ""."""
    from ledger_tools.chain.governance import FederationGovernor
    from ledger_tools.ledger_cache import LedgerCache, cache_path

    governor = _governor_of(ledger)
    if governor is None:
        return GovernanceLog.build(history, [])
    gov = FederationGovernor(ledger.rpc_url, governor, w3=ledger.w3)
    path = cache_path(cache_dir, history.chain_id, governor)
    with LedgerCache(ledger.w3, gov.contract, path, from_block=ledger.deploy_block) as cache:
        cache.sync()
        events = cache.events()
    return GovernanceLog.build(history, events, governor=gov.address)


def _governor_of(ledger) -> str | None:
    """The ledger's owner if it is a contract that governs this ledger, else None."""
    from web3.exceptions import BadFunctionCallOutput, ContractLogicError

    from ledger_tools.chain.governance import FederationGovernor

    owner = ledger.owner()
    if not ledger.w3.eth.get_code(owner):
        return None
    try:
        governed = FederationGovernor(ledger.rpc_url, owner, w3=ledger.w3).ledger_address()
    except (BadFunctionCallOutput, ContractLogicError, ValueError):
        return None
    return owner if governed.lower() == ledger.address.lower() else None
