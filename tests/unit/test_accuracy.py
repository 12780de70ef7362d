"""Live accuracy on hand-made outcomes: known Brier, log loss, ECE, errors and window sums."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.insights.accuracy import (
    BucketKey,
    Outcome,
    Prediction,
    Sums,
    breakdown,
    bucket,
    calibration_bin,
    score,
    summarize,
    window_start,
)

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)


def outcome(success: bool, at: datetime = NOW, agent: str = "a", kind: str = "code", **kw: float) -> Outcome:
    return Outcome(agent, "m", kind, success, kw.get("duration"), kw.get("cost"), at)


def test_one_outcome_scores() -> None:
    key, s = score(Prediction(0.8, 2000.0, 0.01), outcome(False, duration=1000.0, cost=0.03))
    assert key == BucketKey(NOW.replace(minute=0), "a", "m", "code", 8)
    assert s.brier_sum == pytest.approx(0.64)
    assert s.log_loss_sum == pytest.approx(-math.log(0.2))
    assert s.duration_abs_error_sum == pytest.approx(1000.0)
    assert s.duration_log_error_sum == pytest.approx(math.log10(2.0))
    assert s.cost_abs_error_sum == pytest.approx(0.02)
    assert (s.outcomes, s.successes, s.duration_n, s.cost_n) == (1, 0, 1, 1)


def test_a_certain_miss_costs_a_bounded_log_loss_and_unknown_sides_are_not_scored() -> None:
    _, s = score(Prediction(1.0, None, 0.01), outcome(False))
    assert s.log_loss_sum == pytest.approx(-math.log(1e-6))
    assert s.brier_sum == 1.0
    assert (s.duration_n, s.cost_n) == (0, 0)


def test_calibration_bins_are_deciles_with_one_at_the_top() -> None:
    assert [calibration_bin(p) for p in (0.0, 0.09, 0.1, 0.55, 0.99, 1.0)] == [0, 0, 1, 5, 9, 9]


def test_summary_of_hand_made_outcomes() -> None:
    # Bin 9: four outcomes at 0.9, three succeed (gap |3.6 - 3| = 0.6).
    # Bin 2: two outcomes at 0.2, both succeed (gap |0.4 - 2| = 1.6). ECE = 2.2 / 6.
    rows = [(Prediction(0.9, None, None), outcome(i < 3)) for i in range(4)]
    rows += [(Prediction(0.2, None, None), outcome(True)) for _ in range(2)]
    got = summarize(bucket(rows).items())
    assert got.outcomes == 6
    assert got.success_rate == pytest.approx(5 / 6)
    assert got.ece == pytest.approx(2.2 / 6)
    assert got.brier == pytest.approx((3 * 0.01 + 0.81 + 2 * 0.64) / 6)
    assert got.log_loss == pytest.approx((-3 * math.log(0.9) - math.log(0.1) - 2 * math.log(0.2)) / 6)
    assert [(b.bin, b.outcomes, b.observed_rate) for b in got.bins] == [(2, 2, 1.0), (9, 4, 0.75)]
    assert got.duration_mae_ms is None and got.cost_mae_usd is None


def test_windows_are_sums_of_the_hour_buckets_they_cover() -> None:
    rows = [
        (Prediction(0.5, None, None), outcome(True, NOW)),  # this hour
        (Prediction(0.5, None, None), outcome(False, NOW - timedelta(hours=3))),  # today
        (Prediction(0.5, None, None), outcome(True, NOW - timedelta(days=3))),  # this week
        (Prediction(0.5, None, None), outcome(False, NOW - timedelta(days=30))),  # all time only
    ]
    stored = list(bucket(rows).items())
    counts = {w: breakdown(stored, NOW, w).overall.outcomes for w in ("hour", "day", "week", "all")}
    assert counts == {"hour": 1, "day": 2, "week": 3, "all": 4}
    assert window_start(NOW, "hour") == datetime(2026, 3, 2, 10, tzinfo=UTC)
    assert window_start(NOW, "day") == datetime(2026, 3, 1, 11, tzinfo=UTC)
    assert window_start(NOW, "all") is None


def test_breakdown_per_arm_and_per_kind() -> None:
    rows = [
        (Prediction(0.9, None, None), outcome(False, agent="weak", kind="sql")),
        (Prediction(0.9, None, None), outcome(True, agent="good", kind="sql")),
        (Prediction(0.9, None, None), outcome(True, agent="good", kind="code")),
    ]
    got = breakdown(bucket(rows).items(), NOW, "day")
    assert got.per_arm[("weak", "m")].success_rate == 0.0
    assert got.per_arm[("good", "m")].outcomes == 2
    assert got.per_kind["sql"].outcomes == 2
    assert got.per_kind["code"].brier == pytest.approx(0.01)


@given(st.lists(st.tuples(st.floats(0, 1), st.booleans()), min_size=1, max_size=40))
def test_bucketing_loses_nothing(items: list[tuple[float, bool]]) -> None:
    rows = [(Prediction(p, None, None), outcome(y)) for p, y in items]
    merged = Sums()
    for s in bucket(rows).values():
        merged.merge(s)
    assert merged.outcomes == len(items)
    assert merged.successes == sum(y for _, y in items)
    assert merged.brier_sum == pytest.approx(sum((p - y) ** 2 for p, y in items))
    ece = summarize(bucket(rows).items()).ece
    assert ece is not None and 0.0 <= ece <= 1.0


def test_values_follow_the_column_order() -> None:
    from processors.insights.accuracy import SUM_COLUMNS

    s = Sums(*range(1, len(SUM_COLUMNS) + 1))
    assert dict(zip(SUM_COLUMNS, s.values(), strict=True)) == {c: getattr(s, c) for c in SUM_COLUMNS}
