"""Live accuracy: each outcome scored against the prediction made for its task. Pure.

Per outcome: the Brier score (p - y)^2, the log loss -log(p) or -log(1 - p) with p clipped to
[EPSILON, 1 - EPSILON] (a confident miss costs a lot, not infinity), the calibration bin (decile
of p), and for duration and cost the absolute error of the prediction when both sides are known
(duration also as |log10 ratio|, so 2x too slow and 2x too fast weigh the same).

Outcomes are summed per (hour, arm, kind, bin) into `Sums`; any window is the sum of its rows.
The expected calibration error (ECE) of a set of rows is sum over bins of
|sum of p - successes| / outcomes: the outcome-weighted gap between predicted and observed rates.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import NamedTuple

from processors.contracts.events import WindowName

EPSILON = 1e-6
BINS = 10
WINDOWS: Mapping[WindowName, timedelta | None] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "all": None,
}


@dataclass(frozen=True, slots=True)
class Prediction:
    success_probability: float
    predicted_duration_ms: float | None
    expected_cost_usd: float | None


@dataclass(frozen=True, slots=True)
class Outcome:
    agent: str
    model: str
    kind: str  # '' without a kind
    success: bool
    duration_ms: float | None
    cost_usd: float | None
    finished_at: datetime


class BucketKey(NamedTuple):
    """A NamedTuple, not a frozen dataclass: made and hashed once per scored outcome."""

    hour: datetime
    agent: str
    model: str
    kind: str
    bin: int


@dataclass(slots=True)
class Sums:
    outcomes: int = 0
    successes: int = 0
    probability_sum: float = 0.0
    brier_sum: float = 0.0
    log_loss_sum: float = 0.0
    duration_n: int = 0
    duration_abs_error_sum: float = 0.0
    duration_log_error_sum: float = 0.0
    cost_n: int = 0
    cost_abs_error_sum: float = 0.0

    # Spelled out, not a loop over fields(): this runs once per scored outcome.
    def merge(self, other: Sums) -> None:
        self.outcomes += other.outcomes
        self.successes += other.successes
        self.probability_sum += other.probability_sum
        self.brier_sum += other.brier_sum
        self.log_loss_sum += other.log_loss_sum
        self.duration_n += other.duration_n
        self.duration_abs_error_sum += other.duration_abs_error_sum
        self.duration_log_error_sum += other.duration_log_error_sum
        self.cost_n += other.cost_n
        self.cost_abs_error_sum += other.cost_abs_error_sum

    def values(self) -> tuple[float, ...]:
        """In SUM_COLUMNS order."""
        return (
            self.outcomes,
            self.successes,
            self.probability_sum,
            self.brier_sum,
            self.log_loss_sum,
            self.duration_n,
            self.duration_abs_error_sum,
            self.duration_log_error_sum,
            self.cost_n,
            self.cost_abs_error_sum,
        )


SUM_COLUMNS = tuple(f.name for f in fields(Sums))


def calibration_bin(p: float) -> int:
    return min(BINS - 1, max(0, int(p * BINS)))


def score(prediction: Prediction, outcome: Outcome) -> tuple[BucketKey, Sums]:
    """One outcome's contribution to its bucket."""
    p = prediction.success_probability
    p = min(1.0, max(0.0, p)) if math.isfinite(p) else 0.5
    y = 1.0 if outcome.success else 0.0
    clipped = min(1.0 - EPSILON, max(EPSILON, p))
    s = Sums(
        outcomes=1,
        successes=int(outcome.success),
        probability_sum=p,
        brier_sum=(p - y) ** 2,
        log_loss_sum=-math.log(clipped if outcome.success else 1.0 - clipped),
    )
    predicted, actual = prediction.predicted_duration_ms, outcome.duration_ms
    if predicted is not None and actual is not None and math.isfinite(predicted) and math.isfinite(actual):
        s.duration_n = 1
        s.duration_abs_error_sum = abs(predicted - actual)
        s.duration_log_error_sum = abs(math.log10(max(predicted, 1.0) / max(actual, 1.0)))
    cost, paid = prediction.expected_cost_usd, outcome.cost_usd
    if cost is not None and paid is not None and math.isfinite(cost) and math.isfinite(paid):
        s.cost_n = 1
        s.cost_abs_error_sum = abs(cost - paid)
    hour = outcome.finished_at.replace(minute=0, second=0, microsecond=0)
    return BucketKey(hour, outcome.agent, outcome.model, outcome.kind, calibration_bin(p)), s


def bucket(scored: Iterable[tuple[Prediction, Outcome]]) -> dict[BucketKey, Sums]:
    """Outcomes summed per bucket, ready to be added to the stored rows."""
    out: dict[BucketKey, Sums] = {}
    for prediction, outcome in scored:
        key, s = score(prediction, outcome)
        if key in out:
            out[key].merge(s)
        else:
            out[key] = s
    return out


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    bin: int
    outcomes: int
    mean_probability: float
    observed_rate: float


@dataclass(frozen=True, slots=True)
class AccuracySummary:
    outcomes: int
    success_rate: float | None
    mean_probability: float | None
    brier: float | None
    log_loss: float | None
    ece: float | None
    duration_mae_ms: float | None
    duration_log10_error: float | None
    cost_mae_usd: float | None
    bins: tuple[CalibrationBin, ...] = field(default=())


def _mean(total: float, n: int) -> float | None:
    return total / n if n else None


def summarize(rows: Iterable[tuple[BucketKey, Sums]]) -> AccuracySummary:
    """Scores of a set of bucket rows (one window, one arm or kind, or everything)."""
    total = Sums()
    per_bin: dict[int, Sums] = {}
    for key, s in rows:
        total.merge(s)
        per_bin.setdefault(key.bin, Sums()).merge(s)
    n = total.outcomes
    bins = tuple(
        CalibrationBin(b, s.outcomes, s.probability_sum / s.outcomes, s.successes / s.outcomes)
        for b, s in sorted(per_bin.items())
        if s.outcomes
    )
    ece = sum(abs(s.probability_sum - s.successes) for s in per_bin.values()) / n if n else None
    return AccuracySummary(
        outcomes=n,
        success_rate=_mean(total.successes, n),
        mean_probability=_mean(total.probability_sum, n),
        brier=_mean(total.brier_sum, n),
        log_loss=_mean(total.log_loss_sum, n),
        ece=ece,
        duration_mae_ms=_mean(total.duration_abs_error_sum, total.duration_n),
        duration_log10_error=_mean(total.duration_log_error_sum, total.duration_n),
        cost_mae_usd=_mean(total.cost_abs_error_sum, total.cost_n),
        bins=bins,
    )


def window_start(now: datetime, window: WindowName) -> datetime | None:
    """The first hour bucket a window sums: the buckets that started within the window, so the
    'hour' window is the current hour's bucket and 'day' the last 24 of them (a window covers
    between its length less one hour and its length). None: all time."""
    length = WINDOWS[window]
    if length is None:
        return None
    hour = now.replace(minute=0, second=0, microsecond=0)
    return hour - length + timedelta(hours=1)


def in_window(key: BucketKey, start: datetime | None) -> bool:
    return start is None or key.hour >= start


@dataclass(frozen=True, slots=True)
class Breakdown:
    """A window's summary overall, per arm and per kind."""

    window: WindowName
    overall: AccuracySummary
    per_arm: Mapping[tuple[str, str], AccuracySummary]
    per_kind: Mapping[str, AccuracySummary]


def breakdown(rows: Iterable[tuple[BucketKey, Sums]], now: datetime, window: WindowName) -> Breakdown:
    start = window_start(now, window)
    chosen = [(k, s) for k, s in rows if in_window(k, start)]
    arms: dict[tuple[str, str], list[tuple[BucketKey, Sums]]] = {}
    kinds: dict[str, list[tuple[BucketKey, Sums]]] = {}
    for k, s in chosen:
        arms.setdefault((k.agent, k.model), []).append((k, s))
        kinds.setdefault(k.kind, []).append((k, s))
    return Breakdown(
        window,
        summarize(chosen),
        {a: summarize(r) for a, r in sorted(arms.items())},
        {k: summarize(r) for k, r in sorted(kinds.items())},
    )
