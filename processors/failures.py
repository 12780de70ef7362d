"""The failure policy, in one place: what is retried, how long to wait, what is dead-lettered."""

from __future__ import annotations

import random
from dataclasses import dataclass

from processors.errors import TasksageError
from processors.postgres.errors import TRANSIENT_ERRORS


@dataclass(frozen=True, slots=True)
class Verdict:
    retriable: bool
    error_class: str
    message: str


def classify(exc: BaseException) -> Verdict:
    """Retriable errors pause the stream and retry; the rest dead-letter the offending record."""
    name = type(exc).__name__
    if isinstance(exc, TasksageError):
        return Verdict(exc.retriable, name, str(exc))
    if isinstance(exc, (*TRANSIENT_ERRORS, OSError, TimeoutError, ConnectionError)):
        return Verdict(True, name, str(exc) or name)
    return Verdict(False, name, str(exc) or name)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with full jitter, capped."""

    initial_s: float = 0.2
    max_s: float = 10.0
    factor: float = 2.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.max_s, self.initial_s * self.factor ** max(0, attempt))
        return (rng or random).uniform(ceiling / 2, ceiling)
