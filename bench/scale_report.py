"""Plot and the "Scale" section of docs/overhead.md from bench/results/scale.json (see bench.scale)."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "overhead.md"
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- scale:begin (bench/scale.py writes this section) -->", "<!-- scale:end -->"
GIB = 2**30
TERMS = ("slowest peer's extra before commit", "read_commitments", "unseal others (concurrent)",
         "ipfs_add model + reward tree", "vote_tx")


def _by_params(rows: list[dict]) -> list[dict]:
    return sorted((r for r in rows if r["peers"] == 10), key=lambda r: r["parameters"])


def _by_peers(rows: list[dict]) -> list[dict]:
    return sorted((r for r in rows if r["model"] == "11M"), key=lambda r: r["peers"])


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for ax, rows, x_of, label in ((axes[0], _by_params(doc["rows"]), lambda r: r["parameters"] / 1e6,
                                   "parameters (millions), 10 peers"),
                                  (axes[1], _by_peers(doc["rows"]), lambda r: r["peers"], "peers, 11M parameters")):
        if not rows:
            ax.set_axis_off()
            continue
        xs = [x_of(r) for r in rows]
        d = [_headline(r) for r in rows]
        ax.plot(xs, [x["round_no_ledger"] for x in d], "o-", label="round without ledger")
        ax.plot(xs, [x["round_ledger"] for x in d], "s-", label="round with ledger (critical path where measured)")
        ax.plot(xs, [x["slowest_peer_learning"] for x in d], ":", label="slowest peer's learning")
        ax.plot(xs, [r["exchange"]["seconds"] for r in rows], "--", label="update exchange (bulk stream)")
        ax.set_xlabel(label)
        ax.set_ylabel("seconds")
        rss = ax.twinx()
        rss.plot(xs, [r["rss"]["peak_collect_aggregate"] / GIB for r in rows], "^-", color="grey",
                 label="peak RSS, collect+aggregate")
        rss.set_ylabel("GiB (one peer process)")
        rss.set_ylim(bottom=0)
        lines = ax.get_legend_handles_labels()
        more = rss.get_legend_handles_labels()
        ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _series(r: dict) -> dict:
    """The series-sum model of a row (key `deployment` in rows measured before the critical-path replay)."""
    return r.get("deployment_series") or r["deployment"]


def _headline(r: dict) -> dict:
    """What the verdict uses: the measured critical path where the row has it, else the series sum."""
    c = r.get("critical")
    if c is not None:
        return c
    d = _series(r)
    return {**d, "round_ledger": d["round_ledger_gossip"]}


def _row(r: dict) -> str:
    s, m, c = _series(r), r["rss"], r.get("critical")
    ok = lambda pct: "met" if pct <= 20.0 else "**not met**"  # noqa: E731
    if c is None:
        new = "not re-run | — | — | — | — | — | —"
        aggregate = s["aggregate"]
    else:
        t = c["terms"]
        before_commit = t["seal own"] + sum(t.get(k, 0.0) for k in PRE_COMMIT)
        landed = max(v for v in c["background_adds_done_after_t0"].values() if v is not None) - c["ledger_path_seconds"]
        new = (f"{c['round_ledger']:.2f} | {c['ledger_pct']:+.1f} % ({ok(c['ledger_pct'])}) | {before_commit:.2f} | "
               f"{t['exchange window + tx + read (t1→t2)'] - c['exchange']:.2f} | "
               f"{c['aggregate_with_background'] - c['aggregate_quiet']:+.2f} | "
               f"{t['CIDs of results + queue adds'] + t['vote tx']:.2f} | {landed:+.2f}")
        aggregate = c["aggregate_quiet"]
    return (f"| {r['parameters']:,} | {r['peers']} | {s['slowest_peer_learning']:.2f} | {r['exchange']['seconds']:.2f} "
            f"| {aggregate:.2f} | {_headline(r)['round_no_ledger']:.2f} | {new} | "
            f"{s['ledger_pct']:+.1f} % | {m['peak_train'] / GIB:.2f} | {m['peak_collect_aggregate'] / GIB:.2f} | "
            f"{r['load_avg']} |")


def _gossip_pace_seconds(size: int) -> float:
    """What the same blob took on the old path at best: 512 KiB chunks + envelope at 8 gossip messages/s."""
    return (-(-size // (512 * 1024)) + 1) / 8.0


def _memory_text(r: dict) -> str:
    m = r["rss"]
    work = m["peak_collect_aggregate"] - m["rss_after_collect"]
    return (f"Peak RSS of one peer process, {r['parameters']:,} parameters, {r['peers']} peers: "
            f"**{m['peak_collect_aggregate'] / GIB:.2f} GiB** during collect + aggregate (target ≤ 2 GiB: "
            f"{'met' if m['peak_collect_aggregate'] <= 2 * GIB else '**not met**'}), {m['peak_train'] / GIB:.2f} GiB "
            f"while training. What holds it: the interpreter with torch and numpy "
            f"{m['rss_after_imports'] / 2**20:.0f} MiB; before collect {m['rss_before_collect'] / 2**20:.0f} MiB "
            f"(adds M(r−1) and the own update, {m['model_bytes'] / 2**20:.0f} MiB each, and what the training left "
            f"in the allocators); the n canonical updates, {m['held_updates_bytes'] / 2**20:.0f} MiB (held once, as "
            f"bytes: decoding is a zero-copy int32 view); the aggregation working set, {work / 2**20:.0f} MiB "
            f"(int64 aggregate, Gram chunks, new model and its encoding). Not held: the sealed blobs — the gossip "
            f"node spools them to disk and the collector reads each inside its fetch worker, so at most 4 are in "
            f"memory at once (before: every sealed copy in the gossip store plus its chunks, and all n handed to "
            f"the workers at once).")


def _where_text(r: dict) -> str:
    c = r["critical"]
    t, s = c["terms"], _series(r)["ledger_terms"]
    adds = c["background_adds_done_after_t0"]
    return (f"Where the ledger's {c['ledger_added']:.2f} s go at {r['parameters']:,} parameters, {r['peers']} peers "
            f"(median replay; seconds of one peer's wall clock): seal {t['seal own']:.2f}, {_persist_text(t)}; then the exchange window of {c['exchange']:.2f} s, during which the "
            f"commit tx ({t['commit tx (during the exchange)']:.2f}) is mined and the n−1 updates are unsealed as "
            f"they arrive, ends {t['exchange window + tx + read (t1→t2)'] - c['exchange']:.2f} s late (commitments "
            f"{_read_text(c)} {t['read commitments']:.2f}, last unseal after the window "
            f"{t['exchange end → all unsealed']:.2f}); the aggregation takes "
            f"{c['aggregate_with_background']:.2f} s on this path against {c['aggregate_quiet']:.2f} s "
            f"alone; the results' CIDs {t['CIDs of results + queue adds']:.2f} and the vote tx {t['vote tx']:.2f}. "
            f"In the background, the own sealed update landed on IPFS {adds['update']} s after sealing began, the "
            f"model and reward tree {adds['model']} / {adds['rewards']} s (the vote went out at "
            f"{c['ledger_path_seconds']:.2f} s): they land {c['background_drained_after_vote']:.1f} s after the vote, "
            f"well inside a vote period of tens of seconds (if one does not, the publisher keeps retrying, warns "
            f"once past the vote deadline, and a restarted peer re-adds it from its state directory). "
            f"A negative aggregation slowdown means the machine's own noise was larger than the effect. Summed in series as before (same run, every term alone) the additions would be "
            f"{_series(r)['ledger_added']:.2f} s (own IPFS add {s['ipfs_add_own (mean per peer)']:.2f}, results add "
            f"{s['ipfs_add model + reward tree']:.2f}, unseal n−1 {s['unseal others (concurrent)']:.2f})."
            + _paired_text(r) + _before_terms_text(r))


def _paired_text(r: dict) -> str:
    """The replays paired with the path before the commitments were read ahead (`--compare-read`), if run."""
    c = r["critical"]
    b = c.get("read_after_commit")
    if b is None:
        return ""
    ta, tb = c["terms_median"], b["terms_median"]
    window = "exchange window + tx + read (t1→t2)"
    return (f" Paired with as many replays of the path before (`--compare-read`: the commitments read once the "
            f"commit is mined; interleaved in the same run, same exchange and load), medians over the replays: "
            f"ledger path {b['ledger_path_median_seconds']:.3f} s before vs {c['ledger_path_median_seconds']:.3f} s "
            f"read ahead; commitments read after the commit {tb['read commitments']:.3f} s vs "
            f"{ta['read commitments']:.3f} s; the exchange window overrun {tb[window] - c['exchange']:.3f} s vs "
            f"{ta[window] - c['exchange']:.3f} s; ledger share {b['ledger_pct']:+.1f} % (replays "
            f"{b['repeat_pcts']} %) vs {c['ledger_pct']:+.1f} %.")


def _read_text(c: dict) -> str:
    """How the replay had the round's commitments once its commit was mined: read ahead, or read then."""
    if "commitments_read_ahead_runs" not in c:
        return "read"
    runs = len(c["repeat_pcts"])
    return (f"known from the reads made during the exchange in {c['commitments_read_ahead_runs']} of {runs} replays "
            f"(`peer.loop.commitments_ahead`; the median replay: "
            f"{'read ahead' if c['commitments_read_ahead'] else 'read after the commit'})")


#: The replay's terms before the commit tx: rows measured since the persist ‖ CID overlap, and the ones before.
PRE_COMMIT = ("persist sealed.bin (fsync) ‖ CID own", "queue add", "persist sealed.bin (fsync)", "CID own + queue add")


def _persist_text(t: dict) -> str:
    if "queue add" in t:
        return (f"persist the sealed blob (fsync, restart safety) while its CID is computed locally "
                f"{t['persist sealed.bin (fsync) ‖ CID own']:.2f}, queue its IPFS add {t['queue add']:.2f}")
    return (f"persist the sealed blob (fsync, restart safety) {t['persist sealed.bin (fsync)']:.2f}, its CID "
            f"computed locally {t['CID own + queue add']:.2f}")


def _tx_ms(d: dict, kind: str) -> str:
    s = d[kind]
    parts = ", ".join(f"{m.replace('batch[', '[')} ×{s['rpc_count'][m]} {v * 1000:.0f}"
                      for m, v in sorted(s["rpc_median"].items(), key=lambda kv: -kv[1]))
    return f"{s['total_median'] * 1000:.0f} ms ({parts}; local signing/encoding {s['local_median'] * 1000:.0f})"


def _tx_text() -> str | None:
    """One commit / vote transaction split into its JSON-RPC requests, before and after (bench.tx_path)."""
    paths = RESULTS / "tx_path_before.json", RESULTS / "tx_path.json"
    if not all(p.exists() for p in paths):
        return None
    before, after = (json.loads(p.read_text()) for p in paths)
    return (f"Where a transaction's time goes (`{after['command'].strip()}`: 10 members on anvil, median of "
            f"{after['commit']['n']} commits and {after['vote']['n']} votes, milliseconds per request kind): "
            f"before (web3's request-by-request path, commit e03a552, load average {before['load_avg'][0]}–"
            f"{before['load_avg'][1]}) a commit took {_tx_ms(before, 'commit')} and a vote "
            f"{_tx_ms(before, 'vote')} — validation middleware asks for the chain id before every estimate and call, "
            f"and a receipt poll that comes too early sleeps 50 ms; after (`ledger_tools.chain.transactions`, load "
            f"average {after['load_avg'][0]}–{after['load_avg'][1]}, run right after) a commit takes "
            f"{_tx_ms(after, 'commit')} and a vote {_tx_ms(after, 'vote')}: nonce, fee inputs and the gas estimate in "
            f"one batch, then one `eth_sendRawTransactionSync` that answers with the receipt. Before/after pairs run "
            f"alternately: " + "; ".join(f"commit {p['before_commit_ms']:.0f} → {p['after_commit_ms']:.0f} ms, vote "
                                        f"{p['before_vote_ms']:.0f} → {p['after_vote_ms']:.0f} ms (load "
                                        f"{p['load_avg'][0]}–{p['load_avg'][1]})"
                                        for p in after.get("alternating_runs", [])) + ".")


def _before_terms_text(r: dict) -> str:
    """The previous replay's split of the same row (before the latest change), next to the new one."""
    runs = [e for e in r.get("earlier_replays") or [] if e.get("terms")]
    if not runs:
        return ""
    e, t = runs[0], runs[0]["terms"]
    where = f", code at {e['run']['commit']}" if e.get("run") else ""
    return (f" The earliest replay kept with its split ({e['ledger_pct']:+.1f} %, load {e['load_avg'][0]}–"
            f"{e['load_avg'][1]}{where}): "
            f"the ledger added {e['ledger_added']:.2f} s to a {e['round_no_ledger']:.2f} s round — before the "
            f"commit {t['seal own'] + sum(t.get(k, 0.0) for k in PRE_COMMIT):.2f}, commit tx "
            f"{t['commit tx (during the exchange)']:.2f}, commitments read {t['read commitments']:.2f}, last unseal "
            f"after the window {t['exchange end → all unsealed']:.2f}, results' CIDs "
            f"{t['CIDs of results + queue adds']:.2f}, vote tx {t['vote tx']:.2f}.")


def _earlier_text(r: dict) -> str:
    runs = r.get("earlier_replays") or []
    return "".join(f" An earlier run of this row: {e['ledger_pct']:+.1f} % (replays {e['repeat_pcts']} %, exchange "
                   f"{e['exchange']:.2f} s, load {e['load_avg'][0]}–{e['load_avg'][1]}"
                   f"{_settle_text(e.get('settle', 0.0))}"
                   f"{', code at ' + e['run']['commit'] if e.get('run') else ''})." for e in runs)


def _settle_text(settle: float) -> str:
    return f", each replay after `os.sync()` and {settle:g} s idle" if settle else ", replays back to back"


def _load_caveat(r: dict) -> str:
    """A loaded row's baseline (exchange, learning, aggregation) is inflated too, which gives the overlapped work
    more room to hide in: say so next to the verdict, with the row's quiet figures where an earlier run had them."""
    c, b = r["critical"], r.get("before")
    if max(c["load_avg"]) <= 4:
        return ""
    calm = [e for e in r.get("earlier_replays") or [] if max(e["load_avg"]) <= 2 and "round_no_ledger" in e]
    if calm:  # the latest quiet replay of this row: its baseline and share, next to the loaded one
        e = calm[-1]
        quiet = (f" (the last quiet run, load {max(e['load_avg'])}"
                 f"{', code at ' + e['run']['commit'] if e.get('run') else ''}: exchange {e['exchange']:.2f} s, "
                 f"no-ledger round {e['round_no_ledger']:.2f} s, ledger share {e['ledger_pct']:+.1f} %)")
    else:
        quiet = (f" (the quiet run before: exchange {QUIET_EXCHANGE.get(r['key'], 'n/a')} s, no-ledger round "
                 f"{b['round_no_ledger']:.2f} s)" if b else "")
    return (f" **Loaded run:** at load average {max(c['load_avg'])} the baseline itself is inflated — exchange "
            f"{r['exchange']['seconds']:.2f} s, no-ledger round {c['round_no_ledger']:.2f} s{quiet} — which gives "
            f"the background adds and the unsealing more time to hide in, and the replays spread "
            f"{min(c['repeat_pcts']):+.1f}…{max(c['repeat_pcts']):+.1f} %: indicative, not a quiet-machine figure.")


#: Bulk-path exchange seconds of the quiet-machine runs (commits 51ddf82 and ebf631f), for the loaded-run caveat.
QUIET_EXCHANGE = {"1M@10": 0.06, "11M@10": 0.64}


def _verdict(rows: list[dict]) -> list[str]:
    out = []
    for r in sorted(rows, key=lambda r: (r["parameters"], r["peers"])):
        c, b = r.get("critical"), r.get("before")
        if c is None or (r["model"], r["peers"]) not in (("11M", 10), ("1M", 10)):
            continue
        before = (f" Before (series sum, IPFS adds and unsealing on the path): {b['ledger_pct']:+.1f} % at load "
                  f"{b['load_avg']}." if b else "")
        run = r.get("run")
        measured = (f" Measured by `{run['command']}` on {run['date']} (code at {run['commit']})."
                    if run else "")
        out.append(f"- {r['parameters']:,} parameters, {r['peers']} peers, {r['epochs']} local epochs: the "
                   f"ledger adds {c['ledger_added']:.2f} s to a {c['round_no_ledger']:.2f} s round "
                   f"(**{c['ledger_pct']:+.1f} %**, target ≤ 20 %: "
                   f"{'met' if c['ledger_pct'] <= 20 else '**not met**'}; replays {c['repeat_pcts']} %; load "
                   f"average {c['load_avg'][0]}–{c['load_avg'][1]} during the replays, {r['load_avg']} at the row's "
                   f"end{_settle_text(c.get('settle_seconds', 0.0))}). Exchange {r['exchange']['seconds']:.2f} s on the bulk path.{before} The old series sum "
                   f"over this same run: {_series(r)['ledger_pct']:+.1f} %.{measured}{_earlier_text(r)}"
                   f"{_load_caveat(r)}")
    out += ["", "Rows without a critical-path replay (5M, 25M, 11M at 5 and 20 peers) were not re-run (they come "
            "from the earlier quiet-machine runs, `--only 11M@5,5M@10,25M@10` and the full grid): their figures "
            "are the series sum with the IPFS adds and the unsealing still on the path."]
    for key in (("11M", 10), ("1M", 10)):
        ten = [r for r in rows if (r["model"], r["peers"]) == key and r.get("critical")]
        if ten:
            out += ["", _where_text(ten[0])]
    tx = _tx_text()
    if tx:
        out += ["", tx]
    mem = [r for r in rows if r["model"] == "11M" and r["peers"] == 10]
    if mem:
        out += ["", _memory_text(mem[0])]
    e2e = RESULTS / "scale_e2e.json"
    if e2e.exists():
        out += ["", _e2e_text(json.loads(e2e.read_text()))]
    return out


def _e2e_text(e: dict) -> str:
    peaks = e["peak_rss_per_peer_GiB"]
    counts = [re.search(r"(\d+) gossip, (\d+) ipfs", line or "") for line in e["collect"]]
    bulk = sum(int(m.group(1)) for m in counts if m)
    ipfs = sum(int(m.group(2)) for m in counts if m)
    return (f"Real peer processes (`python tests/helpers/large_round_run.py --peers {e['peers']} --task {e['task']}`: "
            f"`fedledger peer run` per peer, own anvil + IPFS node, Multi-Krum): the round "
            f"{'finalized' if e['finalized'] else '**did not finalize**'} (exit codes {sorted(set(e['exit_codes']))}), "
            f"{e['round_seconds']} s for the slowest peer, {e['wall_seconds']} s wall including start-up, load "
            f"average {e['load_avg']}; median phase seconds {e['median_phase_seconds']}; peak RSS per peer process "
            f"{min(peaks):.2f}–{max(peaks):.2f} GiB (whole process life, training included, all 10 peers "
            f"on one machine). Updates collected: {bulk} of {bulk + ipfs} from the bulk copy, {ipfs} from IPFS: the "
            f"collector waits `gossip_wait` (3 s) for gossip/bulk copies, and ten peers each pulling nine 44 MB "
            f"blobs through Python libp2p streams (Noise encryption) on two shared cores do not finish in 3 s, "
            f"while the one local IPFS node serves them unencrypted — on separate machines, where each member's "
            f"IPFS node is its own, the bulk copies are the ones already local.")


def _replays(rows: list[dict]) -> str:
    counts = sorted({len(r["critical"]["repeat_pcts"]) for r in rows if r.get("critical")})
    return "/".join(str(c) for c in counts) or "0"


def section(doc: dict) -> str:
    meta, rows = doc["meta"], doc["rows"]
    head = ("| parameters | peers | slowest learning (s) | exchange (s) | aggregate (s) | round, no ledger (s) | "
            "round, ledger (s) | ledger adds | seal + persist + CID (s) | exchange window overrun: tx, read, last "
            "unseal (s) | aggregate slowed by the adds (s) | result CIDs + vote tx (s) | adds landed, vs the vote "
            "(s) | series sum (before) | peak RSS train (GiB) | peak RSS collect+aggregate (GiB) | load avg |")
    sep = "|" + "---|" * 17
    L = [BEGIN, "## Scale: 1M–25M parameters, 5–20 peers", "",
         f"Produced by `{meta['command'].strip()}` ({meta['machine']}, {meta['epochs']} local epochs, Multi-Krum, "
         f"load average {meta['load_avg_start']} at start, {meta['load_avg_end']} at end); raw numbers in "
         "`bench/results/scale.json`, plot `bench/results/scale.png`. One peer's path, gated by the slowest "
         "peer. The no-ledger round is as above (slowest learning + exchange + aggregate). The ledger round is "
         "now the peer's real wall time on the new path (`bench.critical_path`): seal, persist, CID computed "
         "locally and the IPFS add queued on a background `Publisher`, held until the vote (at most a third of "
         "`gossip_wait`: 1 s); the exchange window (the n−1 updates "
         "arriving evenly over it, each unsealed on arrival by `peer.loop.unseal_ahead`) with the commit tx "
         "mined during it; the commitments read in the background from the seal on (`peer.loop.commitments_ahead`, "
         "the own one from the mined commit: nothing is read after the commit once every member has one); "
         "aggregate (beside the own add only if its hold ran out first); the results' CIDs and the vote tx, then "
         "all adds released (rows measured before be00948 ran the own add from the seal on and queued the "
         "results' adds before the vote tx) — real anvil transactions and real IPFS adds competing for the same "
         "2 cores, "
         f"nothing dropped from the sum, median of {_replays(rows)} replays per row. `series sum (before)` is the old "
         "definition "
         "(every term alone, summed) over the same run. "
         "The exchange is the bulk stream path (`peer.net.bulk`): one sealed update from publish to verified at "
         "a receiver, real `GossipNode` processes on loopback, shortest of 3. Peak RSS: `python -m "
         "bench.scale_rss` (one peer process: train on its shard, then collect the other n−1 sealed updates from "
         "its spool, unseal, Multi-Krum, apply; the kernel's high-water mark per phase). The sections above "
         "were measured before the bulk path (their exchange is 512 KiB gossip chunks at 8 messages/s); "
         "`python -m bench.overhead` measures the bulk path now and keeps this section.", "",
         "### Verdict", "", *_verdict(rows), "",
         "### vs parameters (10 peers)", "", head, sep, *[_row(r) for r in _by_params(rows)], "",
         "### vs peers (11M parameters)", "", head, sep, *[_row(r) for r in _by_peers(rows)], "",
         "![scale](../bench/results/scale.png)", "", END]
    return "\n".join(L)


def splice(text: str, block: str) -> str:
    """`text` with its scale section replaced by `block` (appended when it has none)."""
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END), re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip("\n") + "\n\n" + block + "\n"


def kept_section(text: str) -> str | None:
    """The scale section of an existing overhead.md, for `bench.overhead_report` to keep when it rewrites it."""
    found = re.search(re.escape(BEGIN) + r".*?" + re.escape(END), text, re.S)
    return found.group(0) if found else None


def write_section(doc: dict) -> None:
    DOC.write_text(splice(DOC.read_text() if DOC.exists() else "", section(doc)))
