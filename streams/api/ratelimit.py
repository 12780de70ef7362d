"""The API's per-caller rate limit: a moving window kept in this process's memory.

The limit is written and parsed as the `limits` library does (100/second, 6000/minute). Its
memory storage is not used: every hit there makes sure a threading.Timer is pending to expire
old entries, so a busy API started an OS thread every 10 ms, and each of them took the GIL
from the event loop. Here each caller's hits are a deque of times, trimmed as it is hit."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from limits import RateLimitItem

# Callers not heard from for a whole window are forgotten this often (their entries are stale).
SWEEP_INTERVAL_S = 60.0


class MovingWindow:
    """At most `limit.amount` hits in any `limit.get_expiry()` seconds, per caller."""

    def __init__(self, limit: RateLimitItem, clock: Callable[[], float] = time.monotonic) -> None:
        self.amount = limit.amount
        self.window_s = float(limit.get_expiry())
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._swept_at = clock()

    def hit(self, who: str) -> float | None:
        """Count a hit: None if allowed, else the seconds until the window lets one more in."""
        now = self.clock()
        if now - self._swept_at > SWEEP_INTERVAL_S:
            self._sweep(now)
        hits = self._hits.get(who)
        if hits is None:
            hits = self._hits[who] = deque()
        start = now - self.window_s
        while hits and hits[0] <= start:
            hits.popleft()
        if len(hits) >= self.amount:
            return hits[0] - start
        hits.append(now)
        return None

    def _sweep(self, now: float) -> None:
        start = now - self.window_s
        for who in [w for w, hits in self._hits.items() if not hits or hits[-1] <= start]:
            del self._hits[who]
        self._swept_at = now
