"""Whose X25519 key is the auditor holding? Checked against the keys registered on chain before any unsealing,
so a wrong key fails with a clear reason instead of one unseal failure per committed blob."""
from __future__ import annotations

from ledger_tools.audit.history import LedgerHistory


class UnregisteredKey(ValueError):
    """The X25519 key is not the one registered on chain for the auditor or member."""


def key_owner(history: LedgerHistory, public_key: bytes, address: str | None = None, *,
              key_source: str = "the X25519 key") -> str:
    """The auditor or member address registered with `public_key`; with `address`, check that one.
    `key_source` names the key in the error (e.g. the file it was read from)."""
    registered = {**history.member_keys, **history.auditors}
    if address is None:
        owner = next((a for a, k in registered.items() if k == public_key), None)
        if owner is None:
            raise UnregisteredKey(f"{key_source} belongs to no auditor or member of {history.address}")
        return owner
    if registered.get(address) != public_key:
        known = "registered with another key" if address in registered else "not an auditor or member"
        raise UnregisteredKey(f"{address} is {known} of federation {history.address}; its blobs can't be unsealed")
    return address
