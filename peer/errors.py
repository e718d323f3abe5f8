"""The root of every error a peer node raises (identity, seal, envelope, gossip, state, tasks, the round loop).

Each module keeps its own subclasses next to the code that raises them; callers that only need "the node
failed in a way it explains" catch `PeerError`. What may be retried is marked `ledger_tools.errors.Transient`.
"""
from __future__ import annotations


class PeerError(Exception):
    """Base of the errors raised by `peer`."""
