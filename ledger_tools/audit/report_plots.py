"""The report's matplotlib plots, rendered headless to base64 PNGs (embedded, so the report has no external files).

Legends sit outside the axes (right of or below the data), never over bars or lines; a plot with nothing to
show (no exclusions, no rewards) is not drawn at all, and the report says so in words instead.
"""
from __future__ import annotations

import base64
import io
from collections import defaultdict
from collections.abc import Mapping

import matplotlib

matplotlib.use("Agg")  # headless: the report is rendered to bytes, never shown
import matplotlib.pyplot as plt  # noqa: E402

from ledger_tools.audit.history import LedgerHistory, RoundStatus  # noqa: E402

ETH = 10**18


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")  # "tight" keeps an outside legend in the image
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def label(address: str) -> str:
    return address[:6] + "…" + address[-4:]


def contribution_share(rewards: Mapping[int, Mapping[str, int]]) -> dict[str, float]:
    """Each peer's share of all rewards paid out (the rule's contribution scores turned into wei)."""
    totals: dict[str, int] = defaultdict(int)
    for amounts in rewards.values():
        for account, amount in amounts.items():
            totals[account] += amount
    grand = sum(totals.values())
    return {a: x / grand for a, x in sorted(totals.items(), key=lambda kv: -kv[1])} if grand else {}


def exclusions(history: LedgerHistory) -> dict[str, int]:
    """member -> number of finalized rounds that excluded it."""
    counts = {m: 0 for m in history.members}
    for rec in history.finalized():
        for a in rec.finalization.excluded:
            counts[a] = counts.get(a, 0) + 1
    return counts


def _gas(h: LedgerHistory) -> str:
    rounds = sorted(h.rounds)
    fig, ax = plt.subplots(figsize=(7, 3))
    colors = {RoundStatus.FINALIZED: "#2a9d8f", RoundStatus.FAILED: "#e76f51", RoundStatus.OPEN: "#adb5bd"}
    ax.bar(rounds, [h.rounds[r].gas_used / 1e6 for r in rounds], color=[colors[h.rounds[r].status] for r in rounds])
    ax.set_xlabel("round")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("gas used (millions)")
    ax.set_title("Gas per round (commits + votes); red = failed, grey = open")
    return _png(fig)


def _contribution(share: Mapping[str, float]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([label(a) for a in share], [100 * s for s in share.values()], color="#264653")
    ax.set_ylabel("share of rewards (%)")
    ax.set_title("Contribution share per peer")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    return _png(fig)


def _rewards(rewards: Mapping[int, Mapping[str, int]], peers: list[str], rounds: list[int]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    bottom = [0.0] * len(rounds)
    for peer in peers:
        values = [rewards.get(r, {}).get(peer, 0) / ETH for r in rounds]
        ax.bar(rounds, values, bottom=bottom, label=label(peer))
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_xlabel("round")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel("reward (ETH)")
    ax.set_title("Rewards per round, stacked by peer")
    if len(peers) <= 24:
        ax.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
                  ncol=1 if len(peers) <= 12 else 2, title="peer", title_fontsize=7)
    return _png(fig)


def _exclusions(excl: Mapping[str, int]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3.2))
    ax.bar([label(a) for a in excl], list(excl.values()), color="#e76f51")
    ax.set_ylabel("rounds excluded")
    ax.set_title("Exclusions per peer (finalized rounds)")
    ax.tick_params(axis="x", rotation=60, labelsize=7)
    ax.yaxis.get_major_locator().set_params(integer=True)
    return _png(fig)


def _metrics(metrics: Mapping[int, Mapping[str, float]]) -> str:
    fig, ax = plt.subplots(figsize=(7, 3))
    rounds = sorted(metrics)
    for key, color in (("accuracy", "#2a9d8f"), ("loss", "#e76f51")):
        pts = [(r, metrics[r][key]) for r in rounds if key in metrics[r]]
        if pts:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=key, color=color)
    ax.set_xlabel("round (0 = genesis)")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title("Global model quality per finalized round")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, frameon=False)
    return _png(fig)


def plots(history: LedgerHistory, rewards: Mapping[int, Mapping[str, int]],
          metrics: Mapping[int, Mapping[str, float]]) -> dict[str, str]:
    """name -> base64 PNG for every plot the data supports (exclusions only when some peer was excluded)."""
    out: dict[str, str] = {}
    if metrics:
        out["metrics"] = _metrics(metrics)
    share = contribution_share(rewards)
    if share:
        out["contribution"] = _contribution(share)
        out["rewards"] = _rewards(rewards, list(share), sorted(history.rounds))
    excl = exclusions(history)
    if any(excl.values()):
        out["exclusions"] = _exclusions(excl)
    out["gas"] = _gas(history)
    return out
