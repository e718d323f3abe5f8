"""User-facing errors: one clear line, an optional hint, a meaningful exit code."""
from __future__ import annotations


class UserError(Exception):
    """An expected failure the user can fix (bad config, unreachable RPC, port taken, ...).

    The CLI prints `message` and `hint` on one line each and exits with `exit_code`; no traceback.
    Library code raises its own precise exceptions; CLI modules translate them into UserError.
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code
