"""What is fuzzed: every decoder that reads bytes from the network or disk, its valid samples, the only error
types it may raise, and the mutators. Shared by `python -m bench.fuzz` (long run) and
tests/security/test_fuzz_decoders.py (short run in the default suite), so both hold every decoder to one contract.

A decoder passes a case when it returns or raises one of its documented error types; anything else (KeyError,
TypeError, RecursionError, a crash) is a finding.
"""
from __future__ import annotations

import json
import random
import struct
import tempfile
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

MAX_INPUT = 1 << 16   # mutants are truncated to this: the decoders' size caps are tested elsewhere


@dataclass(frozen=True)
class Target:
    """One decoder under fuzz: `run(data)` may return anything or raise only `allowed`."""

    name: str
    decoder: str                 # the function that reads the bytes, for the results table
    seeds: tuple[bytes, ...]
    run: Callable[[bytes], Any]
    allowed: tuple[type[BaseException], ...]
    text: str = ""               # "json" / "toml": also mutated structurally (a field replaced by a hostile value)


@dataclass(frozen=True)
class Finding:
    target: str
    error: str
    data: bytes

    def line(self) -> str:
        return f"{self.target}: {self.error} on {self.data[:80]!r}{'…' if len(self.data) > 80 else ''}"


def run_case(target: Target, data: bytes) -> Finding | None:
    """None when the decoder accepted `data` or refused it with a documented error."""
    try:
        target.run(data)
    except target.allowed:
        return None
    except Exception as exc:  # noqa: BLE001 - the point of fuzzing: any other error type is a finding
        return Finding(target.name, f"{type(exc).__name__}: {exc}"[:300], data)
    return None


# --------------------------------------------------------------------------------------------------
# Mutators

INTERESTING_INTS = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                    2**63 - 1, 2**64 - 1)
HOSTILE_VALUES: tuple[Any, ...] = (
    None, [], {}, "", "bogus", "abc", -1, 0, 1, 2**64, 2**300, -(2**300), 1.5, 1e308, True, False,
    "0x" + "00" * 20, "0x" + "ff" * 32, [[[[[]]]]], {"a": {"b": {"c": None}}}, ["x"] * 5, "9" * 200, "\u0000",
)


def mutate_bytes(rng: random.Random, data: bytes, others: tuple[bytes, ...] = ()) -> bytes:
    """1-4 stacked byte-level mutations: bit flips, interesting integers over length fields, inserts, deletes,
    duplicated ranges, truncation, splices with another sample."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(out)
        pos = rng.randrange(n) if n else 0
        if op == 0 and n:
            out[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and n:
            out[pos] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif op == 2 and n >= 4:
            value = rng.choice(INTERESTING_INTS)
            width, fmt = rng.choice(((1, "B"), (2, "H"), (4, "I"), (8, "Q")))
            pos = min(pos, n - width) if n >= width else 0
            endian = rng.choice("<>")
            out[pos:pos + width] = struct.pack(endian + fmt, value & ((1 << (8 * width)) - 1))
        elif op == 3:
            out[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4 and n:
            del out[pos:pos + rng.randint(1, max(1, n // 8))]
        elif op == 5 and n:
            end = min(n, pos + rng.randint(1, 64))
            out[pos:pos] = out[pos:end] * rng.randint(1, 8)
        elif op == 6 and n:
            del out[rng.randrange(n):]
        elif op == 7 and others:
            other = rng.choice(others)
            cut = rng.randrange(len(other)) if other else 0
            out = out[:pos] + bytearray(other[cut:])
        elif op == 8 and n:
            out[pos:pos + 1] = rng.choice((b"[", b"{", b'"', b"\\", b"\xff", b"\x00", b"=", b"\n", b"]"))
    return bytes(out[:MAX_INPUT])


def _paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc[:8]):
            out += _paths(v, prefix + (i,))
    return out


def mutate_structure(rng: random.Random, data: bytes, text: str) -> bytes:
    """Parse a JSON/TOML sample, replace (or delete, or add) one field with a hostile value, serialize again."""
    doc = json.loads(data) if text == "json" else tomllib.loads(data.decode())
    path = rng.choice(_paths(doc))
    value = rng.choice(HOSTILE_VALUES)
    if not path:
        doc = value if text == "json" else {"x": value}
    else:
        parent = doc
        for key in path[:-1]:
            parent = parent[key]
        op = rng.randrange(4)
        if op == 0 and isinstance(parent, dict):
            del parent[path[-1]]
        elif op == 1 and isinstance(parent, dict):
            parent[rng.choice(("extra", "tree", "round", "phase", "rounds", "1", "meta"))] = value
        else:
            parent[path[-1]] = value
    if text == "json":
        return json.dumps(doc).encode()
    import tomli_w

    try:
        return tomli_w.dumps(doc).encode()
    except (TypeError, ValueError):  # TOML has no null / no top-level array: fall back to bytes
        return mutate_bytes(rng, data)


def hostile_inputs(target: Target) -> list[bytes]:
    """Fixed inputs every target gets first: empty, deep nesting (the SIGSEGV class), huge numbers, not UTF-8,
    each sample truncated to its first half and with its length fields maxed."""
    out = [b"", b"\x00", b"\xff" * 64, b"[" * 200_000, b'{"a":' * 50_000, b"1" * 5_000, b"-" + b"9" * 5_000,
           b"a = " + b"[" * 5_000, b'"' + b"\\" * 1000, b"NaN", b"1e999", "\ud800".encode("utf-8", "surrogatepass")]
    for seed in target.seeds:
        out += [seed[: len(seed) // 2], seed + b"\x00", seed[:12] + b"\xff" * 8 + seed[20:]]
    return out


def mutant(rng: random.Random, target: Target) -> bytes:
    """One fuzz case for `target`: mostly mutated samples, some random bytes."""
    roll = rng.random()
    if roll < 0.05:
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 512)))
    seed = rng.choice(target.seeds)
    if target.text and roll < 0.5:
        return mutate_structure(rng, seed, target.text)
    return mutate_bytes(rng, seed, target.seeds)


# --------------------------------------------------------------------------------------------------
# The decoders and their samples (built once per process, deterministic)

FEDERATION = "0x" + "ab" * 20
CHAIN_ID = 31337


@cache
def _keys():
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from eth_account import Account

    member = Account.from_key(b"\x01" * 32)
    x_key = X25519PrivateKey.from_private_bytes(b"\x02" * 32)
    return member, x_key


@cache
def _workdir() -> Path:
    shm = Path("/dev/shm")  # file-backed decoders write each case: keep that off the disk where possible
    return Path(tempfile.mkdtemp(prefix="fedledger-fuzz-", dir=shm if shm.is_dir() else None))


@cache
def _codec_seeds() -> tuple[bytes, ...]:
    import consensus

    rng = np.random.default_rng(1)
    return (consensus.encode({"b": rng.normal(size=3), "w": rng.normal(size=(2, 3))}),
            consensus.encode({"x": np.zeros(())}), consensus.encode({"a.b-c_d": rng.normal(size=(1, 2, 1))}))


def _codec_spec_run(data: bytes) -> Any:
    import consensus

    return consensus.decode_ints(data, spec=consensus.ModelSpec({"b": (3,), "w": (2, 3)}), scale_bits=20)


@cache
def _sealed() -> bytes:
    from cryptography.hazmat.primitives import serialization

    from peer.crypto.seal import seal

    member, x_key = _keys()
    pub = x_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return seal(_codec_seeds()[0], {member.address: pub}, federation=FEDERATION, round=1, sender=member.address)


def _unseal_run(data: bytes) -> Any:
    from peer.crypto.seal import parse_header, unseal

    member, x_key = _keys()
    parse_header(data)
    return unseal(data, member.address, x_key, federation=FEDERATION, round=1, sender=member.address)


@cache
def _gossip_seeds() -> tuple[bytes, ...]:
    import hashlib

    from peer.net.chunking import split_blob
    from peer.net.envelope import Envelope

    member, _ = _keys()
    blob = _sealed()
    env = Envelope.create(member, federation=FEDERATION, chain_id=CHAIN_ID, round=1,
                          update_hash=hashlib.sha256(_codec_seeds()[0]).digest(), cid="bafkreiabc",
                          wrapped_keys=b"\x01" * 40, blob_sha256=hashlib.sha256(blob).digest(), blob_size=len(blob),
                          timestamp=1_700_000_000)
    return (env.to_bytes(), *(c.to_bytes() for c in split_blob(member, env, blob, chunk_size=200)[:2]))


def _envelope_run(data: bytes) -> Any:
    from peer.net.envelope import decode_message

    message = decode_message(data)
    message.verify()
    return message


def _chunk_run(data: bytes) -> Any:
    from peer.net.chunking import BlobAssembly
    from peer.net.envelope import BlobChunk, decode_message

    message = decode_message(data)
    if isinstance(message, BlobChunk):
        BlobAssembly(message).add(message)
        first = decode_message(_gossip_seeds()[1])
        BlobAssembly(first).add(message)  # a mutated chunk offered to an assembly begun by a valid one
    return message


def _reward_tree_seeds() -> tuple[bytes, ...]:
    from consensus.merkle import RewardTree

    accounts = ["0x" + bytes([i]) .hex() * 20 for i in range(1, 6)]
    return (RewardTree.build(3, accounts, [5, 7, 0, 11, 2**200]).to_json().encode(),
            RewardTree.build(1, accounts[:1], [1]).to_json().encode(), RewardTree.build(2, [], []).to_json().encode())


def _reward_tree_run(data: bytes) -> Any:
    from consensus.merkle import RewardTree

    return RewardTree.from_json(data)


STATE_ADDRESS = "0x" + "cd" * 20


def _state_seeds() -> tuple[bytes, ...]:
    from peer.loop.state import PeerState, Phase

    d = _workdir() / "state-seed"
    state = PeerState(d, federation=FEDERATION, address=STATE_ADDRESS)
    rec = state.record(1)
    state.advance(rec, Phase.COMMITTED, cid="bafkreiabc", num_samples=10, commit_tx="0x" + "11" * 32,
                  timings={"train": 1.25}, excluded=[STATE_ADDRESS], epsilon=1.5, delta=1e-5)
    state.advance(state.record(2), Phase.FAILED, notes=["vote window closed"])
    state.meta["privacy_history"] = [[1.0, 0.5, 3]]
    state.save()
    return (state.path.read_bytes(),)


def _state_run(data: bytes) -> Any:
    from peer.loop.state import PeerState

    d = _workdir() / "state"
    (d / "node").mkdir(parents=True, exist_ok=True)
    (d / "node" / "state.json").write_bytes(data)
    return PeerState(d, federation=FEDERATION, address=STATE_ADDRESS)


BOOTSTRAP_PEER_ID = "12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA"


def _peer_config_seeds() -> tuple[bytes, ...]:
    from peer.config import PeerConfig

    cfg = PeerConfig.model_validate({"state_dir": "/tmp/p0", "contract": FEDERATION,
                                     "bootstrap": [f"/ip4/1.2.3.4/tcp/1/p2p/{BOOTSTRAP_PEER_ID}"],
                                     "data": {"partition": "dirichlet", "alpha": 0.5, "num_partitions": 3,
                                              "partition_index": 1},
                                     "training": {"lr": 0.05}, "privacy": {"enabled": True},
                                     "adversary": {"attack": "silent", "params": {"scale": 2.0}}})
    return (cfg.to_toml(_workdir() / "seed.toml").read_bytes(),)


def _peer_config_run(data: bytes) -> Any:
    from peer.config import PeerConfig

    path = _workdir() / "peer.toml"
    path.write_bytes(data)
    return PeerConfig.from_toml(path)


def _federation_config_seed(fmt: str) -> tuple[bytes, ...]:
    doc = json.loads((Path(__file__).resolve().parents[1] / "docs" / "federation.example.json").read_text())
    if fmt == "json":
        return (json.dumps(doc, indent=1).encode(),)
    import tomli_w

    return (tomli_w.dumps(doc).encode(),)


def _federation_config_run(suffix: str) -> Callable[[bytes], Any]:
    def run(data: bytes) -> Any:
        from ledger_tools.config import FederationConfig

        path = _workdir() / f"federation{suffix}"
        path.write_bytes(data)
        return FederationConfig.load(path)
    return run


@cache
def targets() -> tuple[Target, ...]:
    """Every decoder of bytes from the network or disk, with its samples and documented errors."""
    import consensus
    from consensus.errors import CodecError
    from consensus.merkle import RewardTreeFormatError
    from ledger_tools.config import ConfigError
    from peer.crypto.seal import SealError
    from peer.loop.state import StateError
    from peer.net.envelope import EnvelopeError

    gossip = _gossip_seeds()
    return (
        Target("canonical codec", "consensus.decode", _codec_seeds(), consensus.decode, (CodecError,)),
        Target("canonical codec (spec)", "consensus.decode_ints(spec=…)", _codec_seeds()[:1], _codec_spec_run,
               (CodecError,)),
        Target("gossip envelope", "peer.net.envelope.decode_message + verify", gossip[:1] + gossip[1:2],
               _envelope_run, (EnvelopeError,)),
        Target("blob chunk", "decode_message + chunking.BlobAssembly.add", gossip[1:], _chunk_run, (EnvelopeError,)),
        Target("seal header", "peer.crypto.seal.parse_header + unseal", (_sealed(),), _unseal_run, (SealError,)),
        Target("reward tree JSON", "consensus.RewardTree.from_json", _reward_tree_seeds(), _reward_tree_run,
               (RewardTreeFormatError,), text="json"),
        Target("peer state file", "peer.loop.state.PeerState (state.json)", _state_seeds(), _state_run,
               (StateError,), text="json"),
        # ValueError covers tomllib.TOMLDecodeError, UnicodeDecodeError and pydantic's ValidationError
        Target("peer config TOML", "peer.config.PeerConfig.from_toml", _peer_config_seeds(), _peer_config_run,
               (ValueError,), text="toml"),
        Target("federation config JSON", "ledger_tools.config.FederationConfig.load (.json)",
               _federation_config_seed("json"), _federation_config_run(".json"), (ConfigError,), text="json"),
        Target("federation config TOML", "ledger_tools.config.FederationConfig.load (.toml)",
               _federation_config_seed("toml"), _federation_config_run(".toml"), (ConfigError,), text="toml"),
    )


def check_seeds() -> list[str]:
    """Every sample must be accepted (a fuzzer mutating rejected samples tests little)."""
    problems = []
    for target in targets():
        for seed in target.seeds:
            try:
                target.run(seed)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                problems.append(f"{target.name}: sample refused: {type(exc).__name__}: {exc}")
    return problems
