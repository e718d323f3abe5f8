"""A self-contained HTML audit report: tables plus matplotlib plots embedded as base64 PNGs (no external files,
scripts or network requests, so it opens anywhere and can be archived as evidence)."""
from __future__ import annotations

import base64
import html
import io
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

import matplotlib

matplotlib.use("Agg")  # headless: the report is rendered to bytes, never shown
import matplotlib.pyplot as plt  # noqa: E402

from ledger_tools.audit.history import LedgerHistory, RoundStatus, short  # noqa: E402
from ledger_tools.audit.queries import peer_history  # noqa: E402
from ledger_tools.audit.verification import VerificationReport  # noqa: E402

GWEI = 10**9
ETH = 10**18


@dataclass
class ReportData:
    """Everything the report shows; only `history` is required."""

    history: LedgerHistory
    rewards: dict[int, dict[str, int]] = field(default_factory=dict)  # round -> account -> wei (reward trees)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)  # round -> {"accuracy": …, "loss": …}
    verification: VerificationReport | None = None
    title: str = "fedledger audit report"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _label(address: str) -> str:
    return address[:6] + "…" + address[-4:]


def contribution_share(data: ReportData) -> dict[str, float]:
    """Each peer's share of all rewards paid out (the rule's contribution scores turned into wei)."""
    totals: dict[str, int] = defaultdict(int)
    for amounts in data.rewards.values():
        for account, amount in amounts.items():
            totals[account] += amount
    grand = sum(totals.values())
    return {a: x / grand for a, x in sorted(totals.items(), key=lambda kv: -kv[1])} if grand else {}


def exclusions(history: LedgerHistory) -> dict[str, int]:
    counts = {m: 0 for m in history.members}
    for rec in history.finalized():
        for a in rec.finalization.excluded:
            counts[a] = counts.get(a, 0) + 1
    return counts


def plots(data: ReportData) -> dict[str, str]:
    """name -> base64 PNG for every plot the data supports."""
    h = data.history
    out: dict[str, str] = {}
    rounds = sorted(h.rounds)

    fig, ax = plt.subplots(figsize=(7, 3))
    colors = {RoundStatus.FINALIZED: "#2a9d8f", RoundStatus.FAILED: "#e76f51", RoundStatus.OPEN: "#adb5bd"}
    ax.bar(rounds, [h.rounds[r].gas_used / 1e6 for r in rounds], color=[colors[h.rounds[r].status] for r in rounds])
    ax.set_xlabel("round")
    ax.set_ylabel("gas used (millions)")
    ax.set_title("Gas per round (commits + votes); red = failed, grey = open")
    out["gas"] = _png(fig)

    share = contribution_share(data)
    if share:
        fig, ax = plt.subplots(figsize=(7, 3.2))
        labels = [_label(a) for a in share]
        ax.bar(labels, [100 * s for s in share.values()], color="#264653")
        ax.set_ylabel("share of rewards (%)")
        ax.set_title("Contribution share per peer")
        ax.tick_params(axis="x", rotation=60, labelsize=7)
        out["contribution"] = _png(fig)

        fig, ax = plt.subplots(figsize=(7, 3.2))
        peers = list(share)
        bottom = [0.0] * len(rounds)
        for peer in peers:
            values = [data.rewards.get(r, {}).get(peer, 0) / ETH for r in rounds]
            ax.bar(rounds, values, bottom=bottom, label=_label(peer))
            bottom = [b + v for b, v in zip(bottom, values)]
        ax.set_xlabel("round")
        ax.set_ylabel("reward (ETH)")
        ax.set_title("Rewards per round, stacked by peer")
        if len(peers) <= 12:
            ax.legend(fontsize=6, ncol=2)
        out["rewards"] = _png(fig)

    excl = exclusions(h)
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([_label(a) for a in excl], list(excl.values()), color="#e76f51")
    ax.set_ylabel("rounds excluded")
    ax.set_title("Exclusions per peer (finalized rounds)")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    out["exclusions"] = _png(fig)

    metric_rounds = sorted(data.metrics)
    if metric_rounds:
        fig, ax = plt.subplots(figsize=(7, 3))
        for key, color in (("accuracy", "#2a9d8f"), ("loss", "#e76f51")):
            pts = [(r, data.metrics[r][key]) for r in metric_rounds if key in data.metrics[r]]
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key, color=color)
        ax.set_xlabel("round (0 = genesis)")
        ax.set_title("Global model quality per finalized round")
        ax.legend()
        out["metrics"] = _png(fig)
    return out


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{margin-bottom:0} .sub{color:#666;margin-top:.2em}
table{border-collapse:collapse;font-size:12px;margin:1em 0} td,th{border:1px solid #ccc;padding:3px 6px}
th{background:#f1f3f5} .ok{color:#2a9d8f;font-weight:bold} .bad{color:#c0392b;font-weight:bold}
img{max-width:100%;border:1px solid #eee;margin:.5em 0} .grid{display:grid;grid-template-columns:1fr 1fr;gap:1em}
"""


def render_html(data: ReportData) -> str:
    h = data.history
    p = h.params
    images = plots(data)
    fin = h.finalized()
    failed = [r for r in h.rounds.values() if r.status is RoundStatus.FAILED]
    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{html.escape(data.title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{html.escape(data.title)}</h1>",
        f"<p class='sub'>federation {h.address} on chain {h.chain_id} · rule {html.escape(p.rule)} "
        f"(param {p.rule_param}, f={p.f}) · quorum {p.quorum_bps / 100:.0f}% · {len(h.members)} members · "
        f"{len(fin)} finalized, {len(failed)} failed rounds</p>",
    ]
    if data.verification is not None:
        v = data.verification
        verdict = ("<span class='ok'>all verified rounds match the chain</span>" if v.ok
                   else f"<span class='bad'>{len(v.mismatches)} mismatch(es)</span>")
        parts.append(f"<h2>Verification</h2><p>{verdict}</p>")
        if v.findings:
            parts.append(_table(["round", "severity", "kind", "peer", "detail"],
                                [[f.round, f.severity.value, f.kind, f.peer or "", f.detail] for f in v.findings]))
    titles = {"metrics": "Accuracy / loss per round", "contribution": "Contribution share per peer",
              "rewards": "Rewards", "exclusions": "Exclusions", "gas": "Gas per round"}
    parts.append("<h2>Plots</h2><div class='grid'>")
    for key in ("metrics", "contribution", "rewards", "exclusions", "gas"):
        if key in images:
            parts.append(f"<figure><img id='plot-{key}' alt='{titles[key]}' "
                         f"src='data:image/png;base64,{images[key]}'><figcaption>{titles[key]}</figcaption></figure>")
    parts.append("</div><h2>Rounds</h2>")
    rows = []
    for r in sorted(h.rounds):
        rec = h.rounds[r]
        f = rec.finalization
        rows.append([r, rec.status.value, len(rec.commits), len(rec.votes), len(rec.votes_per_digest()),
                     short(f.aggregate_hash) if f else "", ", ".join(_label(x) for x in f.excluded) if f else "",
                     f"{f.pool_wei / ETH:.4f}" if f else "", rec.gas_used,
                     f"{data.metrics[r]['accuracy']:.3f}" if r in data.metrics and "accuracy" in data.metrics[r] else ""])
    parts.append(_table(["round", "status", "commits", "votes", "digests", "aggregate", "excluded", "pool (ETH)",
                         "gas", "accuracy"], rows))
    parts.append("<h2>Members</h2>")
    earned: dict[str, int] = defaultdict(int)
    for amounts in data.rewards.values():
        for a, x in amounts.items():
            earned[a] += x
    mrows = []
    excl = exclusions(h)
    for m in h.members:
        ph = peer_history(h, m)
        mrows.append([m, ph.commits, ph.votes, ph.agreements, excl.get(m, 0), f"{earned.get(m, 0) / ETH:.4f}",
                      f"{ph.total_claimed / ETH:.4f}",
                      "" if ph.epsilon_total is None else f"{ph.epsilon_total:.2f}"])
    parts.append(_table(["member", "commits", "votes", "agreed", "excluded", "earned (ETH)", "claimed (ETH)",
                         "ε spent (sum)"], mrows))
    parts.append("<script>addEventListener('load',function(){document.body.setAttribute('data-plots-loaded',"
                 "Array.prototype.filter.call(document.images,function(i){return i.naturalWidth>0}).length)})</script>")
    parts.append("</body></html>")
    return "".join(parts)


def rewards_from_trees(trees: Mapping[int, object]) -> dict[int, dict[str, int]]:
    """round -> account -> wei from loaded `consensus.RewardTree`s."""
    return {r: dict(t.values) for r, t in trees.items()}
