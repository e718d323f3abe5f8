"""A self-contained HTML audit report: provenance, per-round `verify` verdicts, tables and matplotlib plots
embedded as base64 PNGs (no external files, scripts or network requests, so it opens anywhere and can be
archived as evidence). The plots live in `report_plots`."""
from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger_tools.audit.governance import GovernanceLog
from ledger_tools.audit.history import LedgerHistory, RoundRecord, RoundStatus, short
from ledger_tools.audit.provenance import Provenance
from ledger_tools.audit.queries import peer_history, round_ranges, underpaid_warning
from ledger_tools.audit.report_plots import exclusions, label, plots
from ledger_tools.audit.timeline import utc
from ledger_tools.audit.verdicts import Verdicts
from ledger_tools.audit.verification import Severity

ETH = 10**18


@dataclass
class ReportData:
    """Everything the report shows; only `history` is required."""

    history: LedgerHistory
    rewards: dict[int, dict[str, int]] = field(default_factory=dict)  # round -> account -> wei (reward trees)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)  # round -> {"accuracy": …, "loss": …}
    verdicts: Verdicts | None = None
    not_verified: str = "no verification was run"  # shown when `verdicts` is None: why
    provenance: Provenance | None = None
    times: dict[int, int] = field(default_factory=dict)  # block -> timestamp
    title: str = "fedledger audit report"
    governance: GovernanceLog | None = None  # membership changes, stakes, slashes (None: not read)


@dataclass(frozen=True)
class Cell:
    """A table cell with a CSS class (plain values are cells without one)."""

    text: str
    cls: str = ""


def _td(c: object) -> str:
    if isinstance(c, Cell):
        return f"<td class='{c.cls}'>{html.escape(c.text)}</td>" if c.cls else f"<td>{html.escape(c.text)}</td>"
    return f"<td>{html.escape(str(c))}</td>"


def _table(headers: list[str], rows: list[list[object]], table_id: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_td(c) for c in row) + "</tr>" for row in rows)
    ident = f" id='{table_id}'" if table_id else ""
    return f"<table{ident}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1200px}
h1{margin-bottom:0} .sub{color:#666;margin-top:.2em}
table{border-collapse:collapse;font-size:12px;margin:1em 0} td,th{border:1px solid #ccc;padding:3px 6px}
th{background:#f1f3f5;text-align:left} .ok{color:#2a9d8f;font-weight:bold} .bad{color:#c0392b;font-weight:bold}
.warn{color:#b45309;font-weight:bold} .mono{font-family:ui-monospace,monospace;word-break:break-all}
.note{background:#fff7e6;border-left:4px solid #f59e0b;padding:.5em 1em}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} .grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
"""


def _verdict_cell(data: ReportData, rec: RoundRecord) -> Cell:
    v = data.verdicts
    if v is None or rec.round not in v.rounds:
        return Cell("not checked")
    verified = v.rounds[rec.round]
    if verified is None:
        return Cell("–", "")
    mismatches = [f for f in v.of_round(rec.round) if f.severity is Severity.MISMATCH]
    if verified and not mismatches:
        return Cell("✓ failed: no finalization, no claims" if rec.status is RoundStatus.FAILED else "✓", "ok")
    kinds = sorted({f.kind + (f" ({label(f.peer)})" if f.peer else "") for f in mismatches})
    return Cell("✗ " + ", ".join(kinds), "bad")


def _pool_cell(h: LedgerHistory, rec: RoundRecord) -> Cell:
    f = rec.finalization
    if f is None:
        return Cell("")
    text = f"{f.pool_wei / ETH:.4f}"
    if f.pool_wei == 0:
        return Cell(text + " ⚠ unpaid (pool empty)", "bad")
    if h.is_underpaid(rec):
        return Cell(text + " ⚠ paid short", "warn")
    return Cell(text)


def _provenance(p: Provenance) -> str:
    return "<h2>Provenance</h2>" + _table(["field", "value"], [[k, Cell(v, "mono")] for k, v in p.rows()], "provenance")


def _verification(data: ReportData) -> str:
    v = data.verdicts
    if v is None:
        return (f"<h2>Verification</h2><p class='note' id='verification'>Not verified: "
                f"{html.escape(data.not_verified)}.</p>")
    checked = [r for r, ok in v.rounds.items() if ok is not None]
    verdict = (f"<span class='ok'>✓ all {len(checked)} checked round(s) match the chain</span>" if v.ok
               else f"<span class='bad'>✗ {len(v.mismatches)} mismatch(es) in round(s) "
                    f"{round_ranges(sorted({f.round for f in v.mismatches}))}</span>")
    who = f"; auditor {v.auditor}" if v.auditor else ""
    parts = [f"<h2>Verification</h2><p id='verification'>{verdict}<br><span class='sub'>"
             f"{html.escape(v.source)}{html.escape(who)}</span></p>"]
    if v.findings:
        parts.append(_table(["round", "severity", "kind", "peer", "detail"],
                            [[f.round, Cell(f.severity.value, "bad" if f.severity is Severity.MISMATCH else "warn"),
                              f.kind, Cell(f.peer or "", "mono"), f.detail] for f in v.findings], "findings"))
    return "".join(parts)


def _plots(data: ReportData) -> str:
    images = plots(data.history, data.rewards, data.metrics)
    titles = {"metrics": "Accuracy / loss per round", "contribution": "Contribution share per peer",
              "rewards": "Rewards", "exclusions": "Exclusions", "gas": "Gas per round"}
    parts = ["<h2>Plots</h2>"]
    if "exclusions" not in images:
        parts.append("<p id='no-exclusions'>No exclusions: every finalized round kept every committed update "
                     "(no peer was excluded).</p>")
    if "rewards" not in images:
        parts.append("<p>No rewards to plot (reward trees not read, or no round paid anything).</p>")
    parts.append("<div class='grid'>")
    for key in ("metrics", "contribution", "rewards", "exclusions", "gas"):
        if key in images:
            parts.append(f"<figure><img id='plot-{key}' alt='{titles[key]}' "
                         f"src='data:image/png;base64,{images[key]}'><figcaption>{titles[key]}</figcaption></figure>")
    parts.append("</div>")
    return "".join(parts)


def _rounds(data: ReportData) -> str:
    h = data.history
    rows, models = [], []
    for r in sorted(h.rounds):
        rec = h.rounds[r]
        f = rec.finalization
        late = sum(v.late for v in rec.votes)
        closed = ""
        if f is not None:
            closed = f"{utc(data.times.get(f.block_number))} (block {f.block_number})".strip()
        elif rec.failed_block:
            closed = f"{utc(data.times.get(rec.failed_block))} (block {rec.failed_block})".strip()
        acc = data.metrics.get(r, {}).get("accuracy")
        rows.append([r, rec.status.value, _verdict_cell(data, rec), utc(rec.start), closed, len(rec.commits),
                     f"{len(rec.votes)}" + (f" ({late} late)" if late else ""), len(rec.votes_per_digest()),
                     ", ".join(label(x) for x in f.excluded) if f else "", _pool_cell(h, rec), rec.gas_used,
                     "" if acc is None else f"{acc:.3f}"])
        if f is not None:
            models.append([r, Cell("0x" + f.aggregate_hash.hex(), "mono"), Cell(f.aggregate_cid, "mono"),
                           Cell("0x" + f.rewards_root.hex(), "mono"), Cell(f.rewards_cid or "-", "mono")])
    parts = ["<h2>Rounds</h2>"]
    warning = underpaid_warning(h)
    if warning:
        parts.append(f"<p class='note' id='underpaid'>⚠ {html.escape(warning)}.</p>")
    parts.append(_table(["round", "status", "verified", "opened", "closed (finalized/failed)", "commits",
                         "votes", "digests", "excluded", "pool (ETH)", "gas", "accuracy"], rows, "rounds"))
    parts.append("<h2>Finalized models and reward trees</h2>")
    parts.append(_table(["round", "model hash", "model CID", "rewards root", "rewards CID"], models, "models"))
    return "".join(parts)


def _votes(data: ReportData) -> str:
    h = data.history
    rows = []
    for r in sorted(h.rounds):
        rec = h.rounds[r]
        f = rec.finalization
        for v in rec.votes:
            agrees = "" if f is None else (Cell("yes", "ok") if v.digest == f.digest else Cell("no", "bad"))
            rows.append([r, Cell(v.member, "mono"), short(v.digest), agrees, v.weight,
                         Cell("late", "warn") if v.late else "", v.block_number, utc(data.times.get(v.block_number))])
    late = sum(1 for row in rows if isinstance(row[5], Cell))
    return (f"<h2>Votes</h2><details><summary>{len(rows)} votes ({late} late: cast after the round finalized, "
            f"weight 0, reputation only)</summary>"
            + _table(["round", "voter", "digest", "agrees", "weight", "late", "block", "time"], rows, "votes")
            + "</details>")


def _members(data: ReportData) -> str:
    h = data.history
    earned: dict[str, int] = defaultdict(int)
    for amounts in data.rewards.values():
        for a, x in amounts.items():
            earned[a] += x
    excl = exclusions(h)
    rows = []
    for m in h.members:
        ph = peer_history(h, m)
        rows.append([Cell(m, "mono"), ph.commits, ph.votes, ph.agreements, excl.get(m, 0),
                     f"{earned.get(m, 0) / ETH:.4f}" if data.rewards else "?", f"{ph.total_claimed / ETH:.4f}",
                     "" if ph.epsilon_total is None else f"{ph.epsilon_total:.2f}"])
    claims = [[Cell(c.account, "mono"), round_ranges(list(c.rounds)), f"{c.total_wei / ETH:.6f}", c.block_number,
               utc(data.times.get(c.block_number)), Cell(c.tx_hash, "mono")] for c in h.claims]
    return ("<h2>Members</h2>" + _table(["member", "commits", "votes", "agreed", "excluded", "earned (ETH)",
                                         "claimed (ETH)", "ε spent (sum)"], rows, "members")
            + "<h2>Claims</h2>" + (_table(["account", "rounds", "total (ETH)", "block", "time", "tx"], claims, "claims")
                                   if claims else "<p>No rewards claimed yet.</p>"))


def _governance(data: ReportData) -> str:
    """Membership changes by cause, stakes and slashes over time, and the proposals with their tallies."""
    gov = data.governance
    if gov is None:
        return ""
    owner = (f"owned by its governor <span class='mono'>{gov.governor}</span>: members admit and remove by vote, "
             "anyone slashes a member with a signed proof" if gov.governor else
             "owned by an account (deployed without a governor)")
    rows = [[e.block, utc(data.times.get(e.block)), e.round, Cell(e.kind, "bad" if e.kind in ("removed", "slashed")
                                                                 else "ok" if e.kind == "admitted" else ""),
             Cell(e.account, "mono"), e.detail] for e in gov.timeline]
    proposals = [[p.id, p.kind, Cell(p.account, "mono"), Cell(p.proposer, "mono"), f"{p.votes_for / 1e6:g}",
                  f"{p.votes_against / 1e6:g}", len(p.voters), p.executed_block or "not executed"]
                 for p in gov.proposals.values()]
    stakes = [[Cell(a, "mono"), f"{v / ETH:g}"] for a, v in sorted(gov.stakes.items())]
    return ("<h2>Governance</h2>" + f"<p>The ledger is {owner}. Each round's tally is checked against the member "
            "set in force when its votes were cast (verification above).</p>"
            + _table(["block", "time", "round", "event", "account", "detail"], rows, "governance")
            + ("<h3>Proposals</h3>" + _table(["id", "kind", "about", "proposer", "for", "against", "voters",
                                               "executed (block)"], proposals, "proposals") if proposals else "")
            + ("<h3>Stake now</h3>" + _table(["account", "stake (ETH)"], stakes, "stakes") if stakes else ""))


def render_html(data: ReportData) -> str:
    h = data.history
    p = h.params
    fin = h.finalized()
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(data.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f"<p class='sub'>federation {h.address} on chain {h.chain_id} · rule {html.escape(p.rule)} "
        f"(param {p.rule_param}, f={p.f}) · quorum {p.quorum_bps / 100:.0f}% · {len(h.members)} members · "
        f"{len(fin)} finalized, {len(h.failed())} failed rounds · reward {p.reward_per_round_wei / ETH:g} ETH "
        f"per round</p>",
    ]
    if data.provenance is not None:
        parts.append(_provenance(data.provenance))
    parts += [_verification(data), _plots(data), _rounds(data), _votes(data), _members(data), _governance(data)]
    parts.append("<script>addEventListener('load',function(){document.body.setAttribute('data-plots-loaded',"
                 "Array.prototype.filter.call(document.images,function(i){return i.naturalWidth>0}).length)})</script>")
    parts.append("</body></html>")
    return "".join(parts)


def rewards_from_trees(trees: Mapping[int, object]) -> dict[int, dict[str, int]]:
    """round -> account -> wei from loaded `consensus.RewardTree`s."""
    return {r: dict(t.values) for r, t in trees.items()}
