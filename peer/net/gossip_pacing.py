"""Outbound pacing below GossipSub's spam limit: above `rate_limit` messages per second per peer and topic,
libp2p silently stops forwarding, including our own publishes."""
from __future__ import annotations

import time
from collections import deque

import trio


class PublishPacer:
    """At most `rate` publishes in any one-second window (on the wall clock GossipSub's spam check uses)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._times: deque[float] = deque()

    async def wait(self) -> None:
        window = self._times
        while True:
            now = time.time()
            while window and window[0] <= now - 1.0:
                window.popleft()
            if len(window) < self.rate:
                window.append(now)
                return
            await trio.sleep(window[0] + 1.0 - now + 0.01)
