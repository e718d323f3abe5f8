"""Test-only: a deterministic crash point for the kill-and-restart tests. Never set it on a real peer.

``FEDLEDGER_TEST_PAUSE_AFTER=<phase>:<round>`` (e.g. ``sealed:2``) makes the peer, right after it has persisted
that phase of that round, log a ``pause``/``waiting`` event and sleep until it is killed. A test that kills a
peer when it sees an ordinary progress line races the loop: under CPU load the SIGKILL lands phases later.
Unset (always, outside tests) this is a no-op. The variable is read here only.
"""
from __future__ import annotations

import os
import time

from peer.loop.log import NodeLog
from peer.loop.state import Phase

ENV = "FEDLEDGER_TEST_PAUSE_AFTER"


def pause_after(nlog: NodeLog, r: int, phase: Phase) -> None:
    """Block forever when ``ENV`` names this (phase, round): the caller has just made it durable."""
    if os.environ.get(ENV) != f"{phase.value}:{r}":
        return
    nlog.event(r, "pause", "waiting", level="warning", persisted=phase.value,
               message=f"{ENV}: '{phase.value}' persisted, waiting to be killed (test-only)")
    while True:
        time.sleep(60)
