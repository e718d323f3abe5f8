"""Hostile blobs on IPFS (issue 12, finding 2): every read is capped and structurally checked before parsing.

A finalized round whose `rewardsCid` names JSON without a "tree" key made `rewards show` die with a KeyError
traceback, and a 200 KB `[[[[…]]]]` blob killed any fedledger process with SIGSEGV (py_ecc, imported via
eth_account, raises the recursion limit to 100000 and `json.loads` recursed in C). Here each malicious
variant is finalized on a real federation (anvil + IPFS) and `rewards show`, `rewards claim` and
`audit verify` run as subprocesses: one clear line per bad round, no traceback, no crash.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass

import pytest
from cryptography.hazmat.primitives import serialization

import consensus
from consensus.bounded_json import BoundedJsonError, loads_bounded, nested_deeper_than
from consensus.merkle import MAX_REWARD_TREE_BYTES, RewardTreeFormatError
from helpers.ledger_history import Lie, make_history
from ledger_tools.audit.rewards import RewardTreeError, load_reward_tree
from ledger_tools.blobstore import BlobTooLarge, InMemoryBlobStore, IpfsBlobStore

HONEST = consensus.RewardTree.build(1, ["0x" + "11" * 20, "0x" + "22" * 20], [5, 7])
_DUMP = json.loads(HONEST.to_json())


def _dump_with(**changes) -> bytes:
    doc = {k: v for k, v in _DUMP.items() if k not in changes or changes[k] is not None}
    doc.update({k: v for k, v in changes.items() if v is not None})
    return json.dumps(doc).encode()


#: name -> the bytes a malicious voter majority publishes as the round's reward tree
VARIANTS: dict[str, bytes] = {
    "no-tree-key": _dump_with(tree=None),
    "deep-array": b"[" * 200_000,
    "deep-object": b'{"a":' * 50_000,
    "not-json": b"\x01\x02 this is not json",
    "not-an-object": b"[1, 2, 3]",
    "wrong-types": _dump_with(tree=5, values="x"),
    "value-not-a-list": _dump_with(values=[{"value": {"round": 1}}], tree=["0x" + "00" * 32]),
    "huge-number": _dump_with(values=[{"value": ["1", "0x" + "11" * 20, "9" * 5000], "treeIndex": 0}],
                              tree=["0x" + "00" * 32]),
    "huge-bare-int": b'{"format": ' + b"9" * 5000 + b"}",
    "nan": b'{"format": NaN}',
    "node-count": _dump_with(tree=["0x00"] * 50),
}


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_every_variant_is_one_reward_tree_error(name):
    """In process: the loader turns each variant into RewardTreeError (a ValueError underneath), nothing else."""
    store = InMemoryBlobStore()
    with pytest.raises(RewardTreeError, match=f"round 1: reward tree {store.add(VARIANTS[name])} is malformed"):
        load_reward_tree(store, 1, store.add(VARIANTS[name]), HONEST.root)
    with pytest.raises(RewardTreeFormatError):
        consensus.RewardTree.from_json(VARIANTS[name])


def test_deep_nesting_no_longer_kills_the_process():
    """The SIGSEGV reproduction: eth_account imported (recursion limit 100000), then a 200 KB nested blob."""
    code = ("import sys, eth_account, json\n"
            "from consensus.merkle import RewardTree\n"
            "assert sys.getrecursionlimit() >= 100000, sys.getrecursionlimit()\n"
            "try:\n    RewardTree.from_json(b'[' * 200_000)\nexcept ValueError as exc:\n    print('refused:', exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert out.stdout.strip() == "refused: reward tree is nested more than 4 levels deep"


def test_bounded_loader_limits():
    assert loads_bounded(b'{"a": ["[[[[", "\\"[["]}', max_bytes=100, max_depth=2) == {"a": ["[[[[", '"[[']}
    assert not nested_deeper_than(b'"' + b"[" * 100 + b'"', 1)   # brackets inside a string do not count
    assert nested_deeper_than(b"]]]]" + b"[" * 5, 4)            # stray closers cannot hide openers
    for text, limit in [(b"[" * 40, 100), (b"1" * 101, 100), (b"\xff", 100), (b"[1,]", 100), (b"Infinity", 100)]:
        with pytest.raises(BoundedJsonError):
            loads_bounded(text, max_bytes=limit)


def test_cat_stops_reading_past_the_cap(ipfs_store: IpfsBlobStore):
    """The cap holds on the real node (a multi-block blob streamed, refused after the cap) and in memory."""
    blob = os.urandom(600_000)
    cid = ipfs_store.add(blob)
    assert ipfs_store.cat(cid, max_bytes=len(blob)) == blob
    with pytest.raises(BlobTooLarge, match="larger than the 300000 bytes"):
        ipfs_store.cat(cid, max_bytes=300_000)
    mem = InMemoryBlobStore(max_blob_bytes=10)
    with pytest.raises(BlobTooLarge):
        mem.cat(mem.add(b"x" * 11))
    assert mem.cat(mem.add(b"x" * 11), max_bytes=11) == b"x" * 11


def test_oversized_reward_tree_is_refused_before_parsing():
    store = InMemoryBlobStore()
    cid = store.add(b" " * (MAX_REWARD_TREE_BYTES + 1) + HONEST.to_json().encode())
    with pytest.raises(RewardTreeError, match="reward tree"):
        load_reward_tree(store, 1, cid, HONEST.root)


# --------------------------------------------------------------------------------------------------
# On a real federation, through the CLI


@dataclass(frozen=True)
class _RawTree:
    """Quacks like a RewardTree for `LedgerHistory.run_round(lie=…)`: publishes `raw`, votes `root`."""

    raw: bytes
    root: bytes

    def to_json(self) -> str:
        return self.raw.decode("latin-1")  # the variants are ASCII: published byte for byte


HOSTILE_ROUNDS = sorted(VARIANTS)


@pytest.fixture(scope="module")
def hostile_federation(anvil, ipfs, dev_keys):
    """Round 1 honest; then one round per variant, finalized by a 2-of-3 majority that publishes it."""
    store = IpfsBlobStore(ipfs.api_url)
    h = make_history(anvil.rpc_url, store, dev_keys[0].private_key, n_members=3, account_seed="hostile-blobs")
    h.run_round()
    rounds = {}
    for name in HOSTILE_ROUNDS:
        def lie(outcome, raw=VARIANTS[name]):
            h._lied_model = outcome.new_model
            return Lie(outcome.aggregate_hash, h.store.add(outcome.new_model),
                       _RawTree(raw, outcome.rewards_root), outcome.excluded)
        rounds[name] = h.round
        h.run_round(liars=h.members[1:], lie=lie)
    yield h, rounds
    store.close()


def _cli(h, tmp_path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "fedledger.cli", *argv, "--rpc", h.rpc_url, "--contract", h.address,
           "--ipfs", h.store.api_url, "--cache-dir", str(tmp_path / "cache")]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "COLUMNS": "400", **(env or {})})


def _assert_clean(res: subprocess.CompletedProcess, rounds: dict[str, int]) -> str:
    """No crash, no traceback; when `rounds` is given, exactly one line names each hostile round's tree."""
    text = res.stdout + res.stderr
    assert res.returncode not in (139, -11, -6), (res.returncode, text[-2000:])
    assert "Traceback" not in text, text[-4000:]
    for name, r in rounds.items():  # one clear line names each hostile round's reward tree
        lines = [ln for ln in text.splitlines() if f"round {r}: reward tree" in ln]
        assert len(lines) == 1 and "malformed" in lines[0], (name, r, text[-3000:])
    return text


def test_cli_survives_every_hostile_reward_tree(hostile_federation, tmp_path):
    h, rounds = hostile_federation
    member = h.members[0]
    show = _cli(h, tmp_path, "rewards", "show", "--address", member.address)
    _assert_clean(show, rounds)
    assert show.returncode in (0, 1)

    claim = _cli(h, tmp_path, "rewards", "claim", env={"FEDLEDGER_KEY": member.account.private_key})
    _assert_clean(claim, {})  # claim names only what it claimed
    assert claim.returncode == 0 and "claimed" in claim.stdout  # round 1 is honest: its reward is still paid

    key = h.auditor.enc_key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                          serialization.NoEncryption())
    (tmp_path / "auditor.key").write_text(key.hex())
    verify = _cli(h, tmp_path, "audit", "verify", "--key-file", str(tmp_path / "auditor.key"))
    _assert_clean(verify, rounds)
    assert verify.returncode == 1 and "round 1: verified" in verify.stdout


def test_model_blob_caps_follow_the_spec():
    """A canonical model of a spec has exactly `model_blob_cap(spec)` bytes; the seal overhead matches the format."""
    import hashlib

    import numpy as np

    from ledger_tools.blob_caps import (
        SEAL_FIXED_BYTES,
        SEAL_MAX_RECIPIENTS,
        SEAL_WRAP_BYTES,
        ModelBlobError,
        fetch_model,
        model_blob_cap,
        sealed_update_cap,
    )
    from peer.crypto import seal

    spec = consensus.ModelSpec({"b": (3,), "w": (4, 3)})
    model = consensus.encode({"b": np.zeros(3), "w": np.ones((4, 3))})
    assert len(model) == model_blob_cap(spec)
    assert (SEAL_FIXED_BYTES, SEAL_WRAP_BYTES, SEAL_MAX_RECIPIENTS) == (
        seal.FIXED_HEADER.size + seal.TAG_LEN, seal.WRAP.size, seal.MAX_RECIPIENTS)
    assert sealed_update_cap(spec, recipients=2) == len(model) + SEAL_FIXED_BYTES + 2 * SEAL_WRAP_BYTES

    store = InMemoryBlobStore()
    digest = hashlib.sha256(model).digest()
    assert fetch_model(store, store.add(model), digest, spec) == model
    other = consensus.encode({"b": np.zeros(3), "w": np.ones((5, 3))})   # another model: larger than the cap
    with pytest.raises(ModelBlobError, match="larger than"):
        fetch_model(store, store.add(other), hashlib.sha256(other).digest(), spec)
    junk = b"[" * 200_000                                                  # hash matches, bytes are no model
    with pytest.raises(ModelBlobError, match="not a canonical model blob"):
        fetch_model(store, store.add(junk), hashlib.sha256(junk).digest())
    with pytest.raises(ModelBlobError, match="does not match"):
        fetch_model(store, store.add(model), b"\0" * 32, spec)
