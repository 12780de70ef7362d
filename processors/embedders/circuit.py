"""A circuit breaker as a pure state machine: no I/O, no sleeping, an injectable clock.

closed --(threshold consecutive failures)--> open --(reset_after_s elapsed)--> half-open
half-open lets exactly one trial call through: success closes the circuit, failure re-opens it.
Not thread-safe by design: it lives on one event loop and its methods never await.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from enum import StrEnum

Clock = Callable[[], float]


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Counts consecutive failures of a dependency and refuses calls while it is presumed down."""

    def __init__(
        self, failure_threshold: int, reset_after_s: float, *, clock: Clock = time.monotonic
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_after_s < 0:
            raise ValueError("reset_after_s must not be negative")
        self._failure_threshold = failure_threshold
        self._reset_after_s = reset_after_s
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self.times_opened = 0  # monotonic counter for metrics

    @property
    def state(self) -> CircuitState:
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive_failures

    def seconds_until_trial(self) -> float:
        """How long an open circuit keeps refusing calls; 0 when a call may go through now."""
        if self._state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self._reset_after_s - self._clock())

    def try_acquire(self) -> bool:
        """Ask to make a call. Every granted call must end in record_success/failure or release."""
        if self._state is CircuitState.CLOSED:
            return True
        if self._state is CircuitState.OPEN:
            if self._clock() - self._opened_at < self._reset_after_s:
                return False
            self._state = CircuitState.HALF_OPEN
        if self._trial_in_flight:
            return False
        self._trial_in_flight = True
        return True

    def record_success(self) -> None:
        self._state = CircuitState.CLOSED
        self._consecutive_failures = 0
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._consecutive_failures += 1
        trial_failed = self._state is CircuitState.HALF_OPEN
        threshold_reached = (
            self._state is CircuitState.CLOSED and self._consecutive_failures >= self._failure_threshold
        )
        # Already open: a call granted before the circuit opened finished late; nothing to change.
        if trial_failed or threshold_reached:
            self._open()

    def release(self) -> None:
        """A granted call ended without a verdict (e.g. cancelled): let the next caller try."""
        self._trial_in_flight = False

    def _open(self) -> None:
        self._state = CircuitState.OPEN
        self._opened_at = self._clock()
        self._trial_in_flight = False
        self.times_opened += 1
