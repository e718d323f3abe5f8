"""The root of every error the adapters raise, and the marker for failures worth retrying.

`Transient` is a mixin: an error class that also derives from it says "the remote service (chain RPC, IPFS
API) could not be reached; the same call may succeed later". Retry loops test `isinstance(exc, Transient)`,
never type names, and anything else (a revert, a bad blob, a programming error) is never retried.
"""
from __future__ import annotations


class LedgerToolsError(Exception):
    """Base of the errors raised by `ledger_tools` (chain binding, blob store, config, event cache, auditor)."""


class Transient(Exception):
    """Marker mixin: a failure to reach a service, which retrying may fix."""
