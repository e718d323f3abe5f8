"""Incremental cache of a federation ledger's event logs (and their transactions' gas), keyed by block number.

The auditor rebuilds everything from events, so on a long ledger the expensive part is `eth_getLogs` plus one
receipt per transaction. This cache stores both in one SQLite file per (chain id, contract address), and a
second run asks the node only for blocks after the last one it saw.

Devnets are reorganisation-free, but a devnet can be *restarted*: the same chain id and (deterministic)
contract address then name a different chain. The cache remembers the hash of the last block it synced and
of block 0; when either no longer matches what the node reports, the cache is discarded and rebuilt.
Blocks newer than `head - confirmations` are never cached, so a production chain's shallow reorgs do not
poison it either.
"""
from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils import event_abi_to_log_topic, to_checksum_address

from ledger_tools.errors import LedgerToolsError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DEFAULT_CACHE_DIR = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "fedledger"
#: First getLogs window; halved when a node refuses a range ("too many results"), never below 1 block.
LOG_WINDOW = 50_000
RECEIPT_BATCH = 200


class LedgerCacheError(LedgerToolsError):
    """The node could not be read (RPC error, no contract at the address)."""


@dataclass(frozen=True)
class LedgerEvent:
    """One decoded contract event, in chain order, with the gas its transaction used."""

    block: int
    log_index: int
    tx: str
    name: str
    args: dict[str, Any]
    gas_used: int
    sender: str


@dataclass(frozen=True)
class SyncStats:
    from_block: int
    to_block: int
    new_events: int
    new_receipts: int
    rebuilt: bool


def _jsonable(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str) and value.startswith("0x") and len(value) == 42:
        return to_checksum_address(value)
    if hasattr(value, "items"):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def cache_path(cache_dir: Path | str | None, chain_id: int, address: str) -> Path:
    """`<cache_dir>/<chainid>-<address>.sqlite` (default cache dir: ~/.cache/fedledger)."""
    base = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    return base / f"{chain_id}-{to_checksum_address(address)}.sqlite"


class LedgerCache:
    """Event logs of one contract, stored in SQLite and brought up to date by `sync()`.

    `contract` is a web3 Contract (its ABI decodes the logs); `confirmations` blocks below the head are left
    out of the cache (0 on a devnet).
    """

    def __init__(self, w3, contract, path: Path | str, *, confirmations: int = 0, from_block: int = 0) -> None:
        self.w3 = w3
        self.contract = contract
        self.address = to_checksum_address(contract.address)
        self.path = Path(path)
        self.confirmations = confirmations
        self.from_block = from_block
        self._topics = {
            "0x" + event_abi_to_log_topic(item).hex(): item["name"]
            for item in contract.abi
            if item.get("type") == "event"
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path)
        self._init_schema()

    # ---------------------------------------------------------------- storage

    def _init_schema(self) -> None:
        db = self.db
        db.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        version = self._meta("schema")
        if version is not None and int(version) != SCHEMA_VERSION:
            self._drop()
        db.executescript(
            """
            CREATE TABLE IF NOT EXISTS events (
                block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx TEXT NOT NULL,
                name TEXT NOT NULL, args TEXT NOT NULL, PRIMARY KEY (block, log_index));
            CREATE TABLE IF NOT EXISTS receipts (
                tx TEXT PRIMARY KEY, gas_used INTEGER NOT NULL, sender TEXT NOT NULL);
            """
        )
        self._set_meta("schema", str(SCHEMA_VERSION))
        self._set_meta("address", self.address)
        db.commit()

    def _drop(self) -> None:
        self.db.executescript("DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS receipts; DELETE FROM meta;")

    def _meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "LedgerCache":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def synced_block(self) -> int | None:
        value = self._meta("synced_block")
        return int(value) if value is not None else None

    # ---------------------------------------------------------------- sync

    def _block_hash(self, number: int) -> str | None:
        block = self.w3.eth.get_block(number)
        return None if block is None else "0x" + bytes(block["hash"]).hex()

    def _still_valid(self) -> bool:
        synced = self.synced_block
        if synced is None:
            return True
        try:
            if self._block_hash(0) != self._meta("genesis_hash"):
                return False
            return self._block_hash(synced) == self._meta("synced_hash")
        except Exception:  # noqa: BLE001 - block not found on the node: the chain is shorter than what we saw
            return False

    def sync(self) -> SyncStats:
        """Fetch logs (and receipts) of blocks after the last synced one, up to head - confirmations."""
        rebuilt = False
        try:
            if not self._still_valid():
                log.info("ledger cache %s no longer matches the chain; rebuilding", self.path)
                self._drop()
                self._init_schema()
                rebuilt = True
            head = self.w3.eth.block_number - self.confirmations
            synced = self.synced_block
            start = self.from_block if synced is None else synced + 1
            if start > head:
                return SyncStats(start, head, 0, 0, rebuilt)
            logs = list(self._get_logs(start, head))
            new_txs = sorted({"0x" + bytes(lg["transactionHash"]).hex() for lg in logs})
            known = {row[0] for row in self.db.execute("SELECT tx FROM receipts")} if new_txs else set()
            receipts = self._receipts([tx for tx in new_txs if tx not in known])
            rows = []
            for lg in logs:
                topic0 = "0x" + bytes(lg["topics"][0]).hex() if lg["topics"] else ""
                name = self._topics.get(topic0)
                if name is None:
                    continue  # an event this ABI does not know (other contract version): ignore
                decoded = self.contract.events[name]().process_log(lg)
                rows.append((
                    int(lg["blockNumber"]), int(lg["logIndex"]), "0x" + bytes(lg["transactionHash"]).hex(), name,
                    json.dumps(_jsonable(dict(decoded["args"]))),
                ))
            head_hash = self._block_hash(head)
            genesis_hash = self._block_hash(0)
        except LedgerCacheError:
            raise
        except Exception as exc:  # noqa: BLE001 - any node failure becomes one LedgerCacheError naming it
            raise LedgerCacheError(f"cannot read the ledger's events: {type(exc).__name__}: {exc}") from exc
        with self.db:
            self.db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?)", rows)
            self.db.executemany("INSERT OR REPLACE INTO receipts VALUES (?, ?, ?)", receipts)
            self._set_meta("synced_block", str(head))
            self._set_meta("synced_hash", head_hash or "")
            self._set_meta("genesis_hash", genesis_hash or "")
        return SyncStats(start, head, len(rows), len(receipts), rebuilt)

    def _get_logs(self, start: int, end: int) -> Iterator[dict]:
        window = LOG_WINDOW
        lo = start
        while lo <= end:
            hi = min(end, lo + window - 1)
            try:
                batch = self.w3.eth.get_logs({"address": self.address, "fromBlock": lo, "toBlock": hi})
            except Exception as exc:  # noqa: BLE001 - nodes signal "range too large" with assorted errors
                if hi == lo:
                    raise
                window = max(1, window // 2)
                log.debug("getLogs %d..%d refused (%s); window now %d", lo, hi, exc, window)
                continue
            yield from batch
            lo = hi + 1

    def _receipts(self, txs: Sequence[str]) -> list[tuple[str, int, str]]:
        out: list[tuple[str, int, str]] = []
        for i in range(0, len(txs), RECEIPT_BATCH):
            chunk = txs[i:i + RECEIPT_BATCH]
            try:
                with self.w3.batch_requests() as batch:
                    for tx in chunk:
                        batch.add(self.w3.eth.get_transaction_receipt(tx))
                    answers = batch.execute()
            except Exception as exc:  # noqa: BLE001 - some providers lack batching: one request each
                log.debug("batched receipts failed (%s); fetching one by one", exc)
                answers = [self.w3.eth.get_transaction_receipt(tx) for tx in chunk]
            for tx, receipt in zip(chunk, answers):
                out.append((tx, int(receipt["gasUsed"]), to_checksum_address(receipt["from"])))
        return out

    # ---------------------------------------------------------------- read

    def events(self) -> list[LedgerEvent]:
        """Every cached event in chain order."""
        rows = self.db.execute(
            "SELECT e.block, e.log_index, e.tx, e.name, e.args, COALESCE(r.gas_used, 0), COALESCE(r.sender, '') "
            "FROM events e LEFT JOIN receipts r ON r.tx = e.tx ORDER BY e.block, e.log_index"
        ).fetchall()
        return [
            LedgerEvent(b, i, tx, name, json.loads(args), gas, sender) for b, i, tx, name, args, gas, sender in rows
        ]
