"""docs/overhead.md and bench/results/overhead.png from the overhead bench's JSON (`python -m bench.overhead_report`
rewrites the document without re-running)."""
from __future__ import annotations

import json
from pathlib import Path

from bench.overhead import DOCS, RESULTS, TARGET_PCT


def plot(doc: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    led = [r for r in doc["rows"] if r["mode"] == "ledger"] + doc["workloads"]
    labels = [f"{r['peers']}p\n{r['epochs']}ep" for r in led]
    x = range(len(led))
    a1.bar([i - 0.2 for i in x], [r["deployment"]["round_no_ledger"] for r in led], 0.4, label="no ledger (gossip)")
    a1.bar([i + 0.2 for i in x], [r["deployment"]["round_ledger_gossip"] for r in led], 0.4, label="ledger")
    for i, r in zip(x, led):
        a1.text(i + 0.2, r["deployment"]["round_ledger_gossip"], f"+{r['deployment']['ledger_pct']:.0f}%",
                ha="center", va="bottom", fontsize=7)
    a1.set_xticks(list(x), labels)
    a1.set(ylabel="seconds (one peer, peers in parallel)", title="one round, ~1M-parameter model")
    a1.legend(fontsize=7)
    ns = [c["peers"] for c in doc["scale"]]
    a2.plot(ns, [c["round_ledger_gossip"] for c in doc["scale"]], marker="o", label="round time, one peer (s)")
    a2.set(xlabel="peers", ylabel="seconds", title="scale curve (4,810-parameter model, ledger on)")
    a3 = a2.twinx()
    a3.plot(ns, [c["gas"] / 1e6 for c in doc["scale"]], marker="s", color="tab:red", label="gas per round (M)")
    a3.set_ylabel("gas per round (millions)")
    fig.legend(loc="lower right", fontsize=7)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def _verdict(d: dict) -> str:
    return "**met**" if d["ledger_pct"] <= TARGET_PCT else "**not met**"


def _critical(r: dict) -> str:
    """The row's round on the new path (`bench.critical_path`): IPFS adds in the background, unsealing on arrival."""
    c = r.get("critical")
    if c is None:
        return "not measured"
    return f"{c['round_ledger']:.2f} s vs {c['round_no_ledger']:.2f} s ({c['ledger_pct']:+.1f} %, {_verdict(c)})"


def write_doc(doc: dict) -> None:
    from simulation.config import PHASES

    meta, g, ipfs = doc["meta"], doc["gossip"], doc["ipfs"]
    led = [r for r in doc["rows"] if r["mode"] == "ledger"]
    ten = [r for r in led if r["peers"] == 10] + doc["workloads"]
    L = [
        "# Ledger overhead",
        "",
        "What the ledger (sealing, IPFS, on-chain commit and vote transactions) adds to one federated round.",
        f"Produced by `{meta['command'].strip()}` in {meta['wall_seconds']:.0f} s ({meta['machine']}, load average "
        f"{meta['load_avg_start']} at start, {meta['load_avg_end']} at end); raw numbers in `bench/results/overhead.json`,",
        "plot `bench/results/overhead.png`. Model: digits MLP 64→13333→10 (999,985 parameters, 4 MB canonical update),",
        "Multi-Krum; every figure is round 2 of a 2-round run (round 1 pays one-off warm-ups).",
        "",
    ]
    if max(meta["load_avg_start"], meta["load_avg_end"]) > 3:
        L += ["**Load:** other engineers' test suites were running on this 2-core machine (load average above 3 after",
              "waiting ~10 min for it to settle). Both rounds of every comparison come from the same run (the gossip",
              "exchange is the shortest of several samples), but absolute times — learning and the ledger's additions",
              "alike — are inflated; see the spread over repeated runs below.", ""]
    L += [
        "## What is compared",
        "",
        "A federation without a ledger still ships every update to every peer, so the baseline includes that",
        "exchange. Peers run on their own machines, so a round is one peer's path, gated by the slowest peer:",
        "",
        "- **no ledger** = slowest peer's (train + encode) + gossip exchange + aggregate",
        "- **ledger** = slowest peer's (train + encode + seal + IPFS add + commit tx) + gossip exchange + read",
        "  commitments + unseal the other n−1 blobs (4 threads) + aggregate + IPFS add of the new model and reward",
        "  tree + one vote tx",
        "",
        "The ledger overhead reported is therefore the **ledger-only additions** (seal, IPFS add, commit/vote txs,",
        "chain reads, unseal, result publishing) relative to a round that *includes* the update exchange. All terms",
        "but the exchange come from the same ledger run (peers' steps run one at a time so each is timed cleanly),",
        "so load drift between runs cannot fake a difference. The last column of the verdict table is the round as",
        "the peer now runs it (IPFS adds in the background, updates unsealed on arrival, commit tx during the",
        "exchange), measured as real wall time with that work running (`bench.critical_path`). Otherwise the",
        "additions are summed in series (no credit for the",
        "commit tx overlapping gossip delivery), and anvil mines instantly: on a real chain each of the two",
        "transactions waits for a block (≈2 s on an L2, 12 s on L1), and the commit/vote deadlines are configuration.",
        "",
        f"**Gossip exchange** (measured, real `GossipNode` processes over libp2p on loopback): one {g['blob_bytes']:,}-byte",
        f"sealed blob takes **{g['one_blob_seconds']:.2f} s** (shortest sample) from publish to reassembled-and-verified at a receiver",
        f"(samples {g['one_blob_samples']}; it is paced by gossip's 8 messages/s publish limit: envelope + 8 × 512 KiB",
        "chunks). That is the lower bound of any all-to-all exchange and is what the baseline uses (a shorter baseline",
        "only makes the ledger's share larger). For scale, a full all-to-all exchange among "
        + ", ".join(f"{k.split('_')[3]} processes took {v:.2f} s" for k, v in g.items() if k.startswith("all_to_all"))
        + " on this 2-core machine.",
        "",
        "## Verdict on the target (ledger adds ≤ 20 % at 10 peers, ~1M parameters)",
        "",
        "Median of the repeated runs (each run's ledger share, % , in the next column):",
        "",
        "| local epochs | slowest peer's learning (s) | round without ledger (s) | round with ledger (s) | ledger adds | all runs (%) | target | same additions vs learning alone | measured critical path, new path |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in ten:
        d = r["deployment"]
        runs = ", ".join(f"{x:+}" for x in r.get("repeat_pcts", [d["ledger_pct"]]))
        L.append(f"| {r['epochs']} | {d['slowest_peer_learning']:.2f} | {d['round_no_ledger']:.2f} | "
                 f"{d['round_ledger_gossip']:.2f} | +{d['ledger_added']:.2f} s (**+{d['ledger_pct']} %**) | {runs} | "
                 f"{_verdict(d)} | +{d.get('ledger_pct_vs_learning_only', float('nan'))} % | {_critical(r)} |")
    L += ["", "The last column is the comparison this bench used to make (and should not): the same additions divided",
          "by learning + aggregation alone, as if a ledger-free federation got every update to every peer for free.",
          "", "VERDICT_PLACEHOLDER", "",
          "## Where the ledger's time goes (10 peers; seconds, one peer's path)", "",
          "| term | " + " | ".join(f"{r['epochs']} epochs" for r in ten) + " |",
          "|---|" + "---|" * len(ten)]
    for term in ten[0]["deployment"]["ledger_terms"]:
        L.append(f"| {term} | " + " | ".join(f"{r['deployment']['ledger_terms'][term]:.3f}" for r in ten) + " |")
    L += ["", "`slowest peer's extra before commit` is what the ledger adds to the commit-ready time of the slowest",
          "peer (its own seal + IPFS add + commit tx); the other rows are paid once by every peer after that.",
          "", "## 5, 10, 20 peers", "",
          f"{meta['epochs']} local epochs. The IPFS-only column is the same ledger round with gossip down: every other blob",
          "fetched from IPFS concurrently (4 threads) instead of gossip; with a single local js-ipfs node that transfer",
          "is a loopback copy, so it is cheaper here than it would be across a network.", "",
          "| peers | round without ledger (s) | round with ledger (s) | ledger adds | IPFS-only round (s) | IPFS-only adds | gas per round |",
          "|---|---|---|---|---|---|---|"]
    for r in led:
        d = r["deployment"]
        L.append(f"| {r['peers']} | {d['round_no_ledger']:.2f} | {d['round_ledger_gossip']:.2f} | +{d['ledger_pct']} % | "
                 f"{d['round_ledger_ipfs_only']:.2f} | {d['ipfs_only_pct']:+} % | {r['gas']:,} |")
    L += ["", "## IPFS: option sets and throughput (4 MB sealed blobs, local js-ipfs node)", "",
          "| add option set | MB/s |", "|---|---|"]
    for k, v in ipfs["add_MBps"].items():
        L.append(f"| {k} | {v} |")
    L += ["", "| read/write path | value |", "|---|---|"]
    for k, v in ipfs.items():
        if k not in ("add_MBps", "blob_bytes"):
            L.append(f"| {k} | {v} |")
    L += ["", "IPFS_PLACEHOLDER", "",
          "## The simulator's own phase split (every peer's work in one process), seconds", "",
          "Not a deployment figure: one process trains all n peers and does all n peers' ledger work in turn, and",
          "the no-ledger simulator hands blobs over in memory (no exchange). Shown for the phase breakdown only.", "",
          "| peers | epochs | mode | " + " | ".join(PHASES) + " | wall | gas |",
          "|---|---|---|" + "---|" * (len(PHASES) + 2)]
    for r in doc["rows"] + doc["workloads"]:
        L.append(f"| {r['peers']} | {r['epochs']} | {r['mode']} | " + " | ".join(f"{r['phase_seconds'][p]:.2f}" for p in PHASES)
                 + f" | {r['wall_seconds']:.2f} | {r['gas']:,} |")
    L += ["", "## Scale curve (4,810-parameter digits MLP, 1 local epoch, ledger on)", "",
          f"Gossip exchange of the {g.get('small_blob_bytes', 20000):,}-byte update measured at "
          f"{g.get('small_blob_seconds', float('nan')):.3f} s (one chunk). Simulator wall = all peers in one process.", "",
          "| peers | simulator wall (s) | round, one peer, gossip (s) | round, one peer, IPFS only (s) | gas per round | gas per peer | votes until finalized |",
          "|---|---|---|---|---|---|---|"]
    for c in doc["scale"]:
        L.append(f"| {c['peers']} | {c['wall_seconds']:.2f} | {c['round_ledger_gossip']:.2f} | {c['round_ledger_ipfs_only']:.2f} | "
                 f"{c['gas']:,} | {c['gas_per_peer']:,} | {c['votes']} |")
    L += ["", "Gas per round grows linearly: one commit per peer plus votes until a strict majority of weight agrees",
          "(finalization itself is O(1) in the number of members).", ""]
    text = "\n".join(L)
    text = text.replace("VERDICT_PLACEHOLDER", _verdict_text(ten, led)).replace("IPFS_PLACEHOLDER", _ipfs_text(ipfs))
    from bench.scale_report import kept_section, splice  # bench.scale's section survives this rewrite

    scale = kept_section((DOCS / "overhead.md").read_text()) if (DOCS / "overhead.md").exists() else None
    (DOCS / "overhead.md").write_text(splice(text, scale) if scale else text)


def _verdict_text(ten: list[dict], grid: list[dict]) -> str:
    added = [r["deployment"]["ledger_added"] for r in ten]
    worst = max(max(r.get("repeat_pcts", [r["deployment"]["ledger_pct"]])) for r in ten)
    lines = []
    for r in ten:
        d, runs = r["deployment"], r.get("repeat_pcts", [r["deployment"]["ledger_pct"]])
        state = "met" if max(runs) <= TARGET_PCT else ("met by the median, not in every run" if d["ledger_pct"] <= TARGET_PCT
                                                        else "not met")
        lines.append(f"- {r['epochs']} local epochs: +{d['ledger_pct']} % (runs {min(runs):+}…{max(runs):+} %) — **{state}**.")
    other = [r for r in grid if r["peers"] != 10]
    if other:
        lines.append("- Same 2-epoch workload at " + ", ".join(
            f"{r['peers']} peers: +{r['deployment']['ledger_pct']} %" for r in other) + " (one run each).")
    lines.append("")
    lines.append(
        f"Why: the ledger adds a roughly fixed {min(added):.2f}–{max(added):.2f} s per round (seal + IPFS add + commit tx "
        "of the slowest peer, then chain read + concurrent unseal + IPFS add of the results + vote tx), independent "
        f"of the training; the baseline round is the gossip exchange of 4 MB updates (≈{ten[0]['deployment']['gossip_exchange']:.2f} s, paced by gossip) plus "
        "learning. So the share falls as local work grows: with 2 epochs on a ~"
        f"{ten[0].get('samples_per_peer', 144)}-sample digits shard the additions sit right at the 20 % line (a few "
        "tens of milliseconds of machine noise move it across), with 10 and more local epochs (or a larger shard) "
        f"they are clearly below it. Worst run measured at 10 peers: +{worst} %. The target holds whenever learning + "
        f"exchange take ≥ ~{max(added) / (TARGET_PCT / 100):.1f} s per round; it does not hold for rounds much shorter "
        "than that (e.g. tiny models whose exchange is milliseconds — see the scale curve — or a real L1 chain, where "
        "each of the two transactions waits for a block).")
    return "\n".join(lines)


def _ipfs_text(ipfs: dict) -> str:
    add = ipfs["add_MBps"]
    used = next(k for k in add if k.startswith("in use"))
    nopin = next(k for k in add if "no pin" in k)
    one, four = ipfs["store_cat_9_blobs_1_threads_s"], ipfs["store_cat_9_blobs_4_threads_s"]
    per_blob = lambda k: 4.0 / add[k]  # noqa: E731
    return (f"The option set in use adds at {add[used]} MB/s (≈{per_blob(used):.3f} s per 4 MB blob). Not pinning "
            f"measured {add[nopin]} MB/s (≈{per_blob(nopin):.3f} s; between equal and ~50 % faster across runs on this "
            "machine), but an unpinned sealed update may be garbage-collected before auditors re-verify the round, so "
            "pinning stays. Bigger chunks change the DAG layout, which `blobstore.unixfs_cid` must rebuild exactly to "
            "verify a blob without trusting the node; raw leaves are not slower. So the in-use set (CIDv1, raw leaves, "
            "256 KiB chunks, pinned) stays: the own-blob add is a few hundredths of a second of the round either way. "
            "The client does not copy the blob (`bytes(b)` of bytes is the same object); the local CID rebuild costs one "
            f"sha256 pass per add and per cat. Fetching 9 blobs from the node: {one:.3f} s on one thread, {four:.3f} s on "
            "4 (one HTTP client per thread) — a single local js-ipfs node (one Node.js event loop) on 2 busy cores "
            "gives concurrency little to overlap; it pays off against remote nodes, where each fetch waits on the "
            "network, and it overlaps unsealing with fetching.")


def rewrite_doc() -> None:
    """Regenerate docs/overhead.md from bench/results/overhead.json (no re-run)."""
    write_doc(json.loads((RESULTS / "overhead.json").read_text()))


if __name__ == "__main__":
    rewrite_doc()
