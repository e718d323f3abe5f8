"""The root of every devnet failure (tools, compiler, anvil, IPFS node, funding, services): one line plus a hint."""
from __future__ import annotations


class DevnetError(RuntimeError):
    """An expected devnet failure, with a hint for the user."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class DevnetAlreadyRunning(DevnetError):
    """Every service recorded in the state dir is running: nothing to start."""


class DevnetPortInUse(DevnetError):
    """A port the devnet must bind is held by another process."""
