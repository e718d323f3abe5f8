"""Who may send gossip and who an update is sealed for: the federation's members and auditors, cached.

The gossip validator runs on the gossip thread for every inbound message; it must never wait for an RPC
call (a slow or restarting chain node would stall the whole gossip router). So membership is read from the
chain by the round loop at the start of every round (`refresh`), and the current round is pushed by the loop
(`set_round`); the validator's callbacks (`is_member`, `current_round`) only read this cache.

Members are admitted and removed by vote (or slashed) while rounds run, and an admitted member commits from the
open round on: waiting for the next round would drop its envelopes until then. `MembershipWatcher` therefore
polls the ledger's membership events (`MemberAdmitted`, `MemberRemoved`, auditor registration and removal) on
its own thread and connection and refreshes the cache as soon as one appears, so gossip validation follows the
on-chain member set within a poll interval, without a restart.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ledger_tools.chain import FederationLedger

log = logging.getLogger("fedledger.membership")
_PROBE = X25519PrivateKey.from_private_bytes(b"\x01" * 32)


def usable_x25519_key(key: bytes) -> bool:
    """Whether a registered encryption key can be sealed to: 32 bytes and not a low-order point (e.g. all zeros)."""
    try:
        _PROBE.exchange(X25519PublicKey.from_public_bytes(bytes(key)))
    except ValueError:
        return False
    return True


class MembershipCache:
    """Members' and auditors' X25519 keys as of the last `refresh`, plus the round the loop is in."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._members: Mapping[str, bytes] = MappingProxyType({})
        self._auditors: Mapping[str, bytes] = MappingProxyType({})
        self._refreshed_round: int | None = None
        self._round = 0

    def refresh(self, ledger: FederationLedger, round: int | None = None) -> None:
        """Read members and auditors from the chain (two + n calls); skipped if already read for `round`."""
        if round is not None and round == self._refreshed_round:
            return
        members = ledger.member_keys()
        auditors = {a.address: a.enc_key for a in ledger.auditors()}
        with self._lock:
            self._members = MappingProxyType(members)
            self._auditors = MappingProxyType(auditors)
            self._refreshed_round = round

    def set_round(self, round: int) -> None:
        self._round = round

    # --- read by the gossip thread: no I/O
    def is_member(self, address: str) -> bool:
        return address in self._members

    def current_round(self) -> int:
        return self._round

    # --- read by the round loop
    @property
    def members(self) -> Mapping[str, bytes]:
        return self._members

    @property
    def auditors(self) -> Mapping[str, bytes]:
        return self._auditors

    def recipients(self) -> dict[str, bytes]:
        """Everyone a sealed update must be readable by: every member and every registered auditor.

        A registered key that cannot be sealed to (the contract accepts any bytes32 for a member, e.g. zero or
        another low-order point) is left out: that member could never read a blob anyway, and including it
        would make every honest peer's seal fail, i.e. one bad admission would halt the federation.
        """
        return {a: k for a, k in {**self._auditors, **self._members}.items() if usable_x25519_key(k)}


#: Ledger events after which the cache is re-read.
MEMBERSHIP_EVENTS = ("MemberAdmitted", "MemberRemoved", "AuditorRegistered", "AuditorRemoved")


class MembershipWatcher:
    """Refresh a `MembershipCache` whenever the ledger logs a membership change (polled every `interval` s).

    It reads the chain through its own connection (never the round loop's or the gossip thread's) and only asks
    for logs of the blocks it has not seen. `on_change(added, removed)` is told who entered or left the member set.
    A failing RPC is retried at the next poll; the loop's per-round refresh stays the backstop.
    """

    def __init__(self, cache: MembershipCache, ledger: FederationLedger, *, interval: float = 2.0,
                 on_change: Callable[[list[str], list[str]], None] | None = None) -> None:
        from eth_utils import event_abi_to_log_topic

        self.cache = cache
        self.ledger = FederationLedger(ledger.rpc_url, ledger.address, abi=ledger.abi,
                                       deploy_block=ledger.deploy_block)
        self.interval = interval
        self.on_change = on_change
        self._topics = ["0x" + event_abi_to_log_topic(item).hex() for item in ledger.abi
                        if item.get("type") == "event" and item.get("name") in MEMBERSHIP_EVENTS]
        self._block: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll(self) -> bool:
        """One check: True if a membership event appeared since the last one (and the cache was refreshed)."""
        w3 = self.ledger.w3
        head = int(w3.eth.block_number)
        if self._block is None:  # first poll: read the member set, then watch from this block on
            self._block = head
            self.cache.refresh(self.ledger)
            return False
        if head <= self._block:
            return False
        logs = w3.eth.get_logs({"address": self.ledger.address, "fromBlock": self._block + 1, "toBlock": head,
                                "topics": [self._topics]})
        if not logs:
            self._block = head
            return False
        before = set(self.cache.members)
        self.cache.refresh(self.ledger)
        self._block = head
        after = set(self.cache.members)
        if self.on_change is not None:
            self.on_change(sorted(after - before), sorted(before - after))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - any RPC failure: retried next poll, the round refresh remains
                log.debug("membership poll failed: %s", exc)

    def start(self) -> "MembershipWatcher":
        try:
            self.poll()
        except Exception as exc:  # noqa: BLE001 - the thread retries; starting must not fail the peer
            log.debug("membership poll failed: %s", exc)
        self._thread = threading.Thread(target=self._run, name="membership-watcher", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 5)
