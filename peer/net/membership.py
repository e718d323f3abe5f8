"""Who may send gossip and who an update is sealed for: the federation's members and auditors, cached.

The gossip validator runs on the gossip thread for every inbound message; it must never wait for an RPC
call (a slow or restarting chain node would stall the whole gossip router). So membership is read from the
chain once per round by the round loop (`refresh`), and the current round is pushed by the loop
(`set_round`); the validator's callbacks (`is_member`, `current_round`) only read this cache.
"""
from __future__ import annotations

import threading
from collections.abc import Mapping
from types import MappingProxyType

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from ledger_tools.chain import FederationLedger

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
