"""Beta posteriors, shrinkage and outcome totals: plain arithmetic, checked by tables and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.statistics import (
    ArmTotals,
    add_outcome,
    beta_mean,
    beta_posterior,
    beta_variance,
    mean_cost_usd,
    mean_duration_ms,
    shrunk_mean,
    shrunk_rate,
    weighted_mean,
)

counts = st.floats(min_value=0, max_value=1e5, allow_nan=False)
rates = st.floats(min_value=0, max_value=1)
totals = st.builds(
    ArmTotals,
    attempts=counts,
    successes=counts,
    duration_sum_ms=counts,
    duration_n=counts,
    cost_sum_usd=counts,
    cost_n=counts,
)


@pytest.mark.parametrize(
    ("successes", "attempts", "prior", "strength", "expected"),
    [
        (0, 0, 0.7, 2, (1.4, 0.6)),
        (3, 4, 0.5, 2, (4.0, 2.0)),
        (5, 3, 0.5, 2, (4.0, 1.0)),  # successes above attempts are clamped
        (-1, 2, 0.5, 0, (0.0, 2.0)),
    ],
)
def test_beta_posterior_table(
    successes: float, attempts: float, prior: float, strength: float, expected: tuple[float, float]
) -> None:
    assert beta_posterior(successes, attempts, prior, strength) == pytest.approx(expected)


def test_beta_mean_and_variance() -> None:
    assert beta_mean(3, 1) == pytest.approx(0.75)
    assert beta_mean(0, 0, default=0.4) == 0.4
    assert beta_variance(1, 1) == pytest.approx(1 / 12)
    assert beta_variance(0, 0) == pytest.approx(1 / 12)
    assert beta_variance(30, 10) < beta_variance(3, 1)


def test_shrunk_rate_without_data_is_the_prior() -> None:
    assert shrunk_rate(0, 0, 0.65, 2) == pytest.approx(0.65)


@given(rate=rates, prior=rates, n=st.integers(min_value=1, max_value=10_000))
def test_shrinkage_fades_as_evidence_grows(rate: float, prior: float, n: int) -> None:
    few = shrunk_rate(rate * n, n, prior, 2.0)
    many = shrunk_rate(rate * n * 10, n * 10, prior, 2.0)
    assert abs(many - rate) <= abs(few - rate) + 1e-12
    assert 0.0 <= few <= 1.0 and 0.0 <= many <= 1.0


@pytest.mark.parametrize(
    ("total", "n", "prior", "strength", "expected"),
    [
        (10.0, 2.0, None, 2.0, 5.0),
        (0.0, 0.0, None, 2.0, None),
        (0.0, 0.0, 7.0, 2.0, 7.0),
        (40.0, 2.0, 10.0, 2.0, 15.0),
    ],
)
def test_shrunk_mean_table(
    total: float, n: float, prior: float | None, strength: float, expected: float | None
) -> None:
    assert shrunk_mean(total, n, prior, strength) == (
        pytest.approx(expected) if expected is not None else None
    )


def test_weighted_mean_ignores_non_positive_weights() -> None:
    assert weighted_mean([1.0, 3.0, 100.0], [1.0, 1.0, 0.0]) == pytest.approx(2.0)
    assert weighted_mean([1.0], [0.0]) is None
    with pytest.raises(ValueError):
        weighted_mean([1.0, 2.0], [1.0])


def test_add_outcome_counts_and_means() -> None:
    t = add_outcome(None, True, 1000.0, 0.01)
    t = add_outcome(t, False, None, 0.03)
    assert t == ArmTotals(
        attempts=2, successes=1, duration_sum_ms=1000, duration_n=1, cost_sum_usd=0.04, cost_n=2
    )
    assert t.failures == 1
    assert mean_duration_ms(t) == pytest.approx(1000.0)
    assert mean_cost_usd(t) == pytest.approx(0.02)
    assert mean_duration_ms(ArmTotals()) is None


@pytest.mark.parametrize("bad", [-1.0, math.nan, math.inf])
def test_add_outcome_rejects_values_that_would_poison_counters(bad: float) -> None:
    with pytest.raises(ValueError):
        add_outcome(None, True, bad, None)
    with pytest.raises(ValueError):
        add_outcome(None, True, None, bad)
