"""How the worker's upkeep duties repeat and fail: a step run every so often, which backs off
while it fails and says so once per try and once when it works again.

Every duty besides consuming (snapshots, outbox sweep, held results, index merge, learner,
insights, coverage, retention) is such a step. They share this so that an outage reads the same in
the log whichever duty meets it, and so that none of them tries faster than the worker's retry
backoff while its dependency is away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from processors.failures import Backoff, classify

log = logging.getLogger(__name__)


async def pause(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep unless stopping; True when the worker is stopping."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


class FailureStreak:
    """The failures in a row of one upkeep step, and when it may be tried again.

    A retriable failure (failures.classify: PostgreSQL, the broker or the provider away) waits the
    worker's retry backoff (TASKSAGE_RETRY_INITIAL_S, doubling to TASKSAGE_RETRY_MAX_S), so a step
    whose database is away retries ever more slowly instead of at its idle pace. A failure that is
    not retriable (a bug, or stored data the code does not read) will not mend by itself: it is
    logged as an error with its traceback and waits the longest backoff at once. Either way the step
    is tried again, since a deploy or a repair mends it without a restart. One log line per try,
    with the count and the wait; one when the step works again."""

    def __init__(self, step: str, backoff: Backoff) -> None:
        self.step = step
        self.backoff = backoff
        self.count = 0
        self._retry_at = 0.0

    def failed(self, exc: Exception) -> None:
        self.count += 1
        verdict = classify(exc)
        if verdict.retriable:
            wait_s = self.backoff.delay(self.count - 1)
            log.warning("%s failed (%d in a row, next try in %.2f s): %s", self.step, self.count, wait_s, exc)
        else:
            wait_s = self.backoff.max_s
            log.error(
                "%s failed with %s, which retrying does not mend: a bug or data it cannot read"
                " (%d in a row, next try in %.2f s): %s",
                self.step,
                verdict.error_class,
                self.count,
                wait_s,
                verdict.message,
                exc_info=exc,
            )
        self._retry_at = time.monotonic() + wait_s

    def succeeded(self) -> None:
        if self.count:
            log.info("%s works again after %d failures in a row", self.step, self.count)
        self.count = 0

    def ready(self) -> bool:
        """Whether the step may run now (it is not failing, or its wait is over)."""
        return self.count == 0 or time.monotonic() >= self._retry_at

    def nap_s(self, idle_s: float) -> float:
        """How long to wait before the step's next try: `idle_s`, or while failing the rest of its
        backoff if that is longer (a failing step never tries more often than a working one)."""
        return max(idle_s, self._retry_at - time.monotonic()) if self.count else idle_s


async def every(
    step: str,
    run: Callable[[], Awaitable[object]],
    interval_s: float,
    stopping: asyncio.Event,
    backoff: Backoff,
    *,
    first_at_start: bool,
) -> None:
    """Run `run` every `interval_s` until `stopping` (at once first, or after one interval), and
    back off while it fails (FailureStreak)."""
    streak = FailureStreak(step, backoff)
    if not first_at_start and await pause(stopping, interval_s):
        return
    while True:
        try:
            await run()
            streak.succeeded()
        except Exception as exc:
            streak.failed(exc)
        if await pause(stopping, streak.nap_s(interval_s)):
            return
