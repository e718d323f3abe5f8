"""User-facing errors: one clear line, an optional hint, a meaningful exit code.

Exit codes of every `fedledger` command (README, "CLI exit codes"):
0 success; 1 a check failed (verification mismatch, a round not finalized, a transaction refused);
2 bad input (usage, an option value, a file of the wrong kind or format, a contract that is not ours);
3 a service (chain RPC, IPFS API) cannot be reached or is not what was asked for; 70 internal error (a bug:
rerun with FEDLEDGER_DEBUG=1 for the traceback); 130 interrupted.
"""
from __future__ import annotations

EXIT_CHECK_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130

#: set to 1 to get the traceback of an internal error instead of its one-line summary
DEBUG_ENV = "FEDLEDGER_DEBUG"
INTERNAL_HINT = f"rerun with {DEBUG_ENV}=1 for the traceback"


class UserError(Exception):
    """An expected failure the user can fix (bad config, unreachable RPC, port taken, ...).

    The CLI prints `message` and `hint` on one line each and exits with `exit_code`; no traceback.
    Library code raises its own precise exceptions; CLI modules translate them into UserError.
    """

    def __init__(self, message: str, hint: str | None = None, exit_code: int = EXIT_CHECK_FAILED) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.exit_code = exit_code


def bad_input(message: str, hint: str | None = None) -> UserError:
    """A UserError for a value the user gave (exit 2)."""
    return UserError(message, hint=hint, exit_code=EXIT_BAD_INPUT)
