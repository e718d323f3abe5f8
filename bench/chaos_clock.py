"""Run the fedledger CLI with a skewed wall clock: `python -m bench.chaos_clock peer run ...`.

The peer judges a round's phase by `time.time()` (peer/loop/round_clock.py; `NodeContext.clock`), and nothing
in its config offsets that clock, so the chaos suite skews it from outside: this wrapper replaces `time.time`
before the CLI is imported, adding the offset written in the file `$CHAOS_CLOCK_FILE` (re-read at most once a
second, so the harness moves the clock of a running peer). Monotonic clocks (sleeps, timeouts) are untouched,
as on a machine whose NTP is off. libfaketime (LD_PRELOAD) would be the usual tool, but with Python 3.11 it
breaks `time.sleep` (EINVAL from clock_nanosleep, or a hang), so it cannot run a peer.
"""
from __future__ import annotations

import os
import runpy
import sys
import time

_real_time = time.time
_state = {"offset": 0.0, "read_at": -1.0}


def _offset() -> float:
    now = time.monotonic()
    if now - _state["read_at"] >= 1.0:
        _state["read_at"] = now
        try:
            with open(os.environ["CHAOS_CLOCK_FILE"]) as fh:
                _state["offset"] = float(fh.read().strip() or 0)
        except (OSError, KeyError, ValueError):
            pass  # no file or a half-written one: keep the last offset
    return _state["offset"]


def skewed_time() -> float:
    return _real_time() + _offset()


def main() -> None:
    time.time = skewed_time
    sys.argv = ["fedledger", *sys.argv[1:]]
    runpy.run_module("fedledger.cli", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
