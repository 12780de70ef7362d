"""Latency percentiles and throughput figures, computed the same way for every measurement."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in [0, 100]) of an ascending sequence."""
    if not sorted_values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile {q} is outside [0, 100]")
    position = (len(sorted_values) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    if low == high:
        return float(sorted_values[low])
    return float(sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low))


@dataclass(frozen=True, slots=True)
class LatencySummary:
    count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float


def summarize(values_ms: Sequence[float]) -> LatencySummary | None:
    if not values_ms:
        return None
    ordered = sorted(values_ms)
    return LatencySummary(
        count=len(ordered),
        p50_ms=round(percentile(ordered, 50), 2),
        p95_ms=round(percentile(ordered, 95), 2),
        p99_ms=round(percentile(ordered, 99), 2),
        max_ms=round(ordered[-1], 2),
        mean_ms=round(sum(ordered) / len(ordered), 2),
    )


def rate(events: int, seconds: float) -> float:
    """Events per second, 0 when nothing was timed."""
    return round(events / seconds, 1) if seconds > 0 else 0.0


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(numerator / denominator, 3)


def progress_rate(samples: Sequence[tuple[float, int]]) -> tuple[int, float]:
    """(events, seconds) between the first sample that shows progress and the last one that adds any.

    Samples are (time, cumulative count) polls of a consumer that was already running: timing
    from the first visible progress leaves out group joins and client start-up, the same way
    for every loop compared.
    """
    if len(samples) < 2:
        return 0, 0.0
    start = next((i for i in range(1, len(samples)) if samples[i][1] > samples[0][1]), None)
    if start is None:
        return 0, 0.0
    final = samples[-1][1]
    end = next(i for i in range(start, len(samples)) if samples[i][1] == final)
    if end == start:  # everything arrived in one step: time it from the sample before
        start -= 1
    begin_time, begin_count = samples[start]
    return final - begin_count, samples[end][0] - begin_time
