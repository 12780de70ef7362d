"""Metric names read out of PromQL by the dashboard and alert checks (tests/support/promql.py)."""

from __future__ import annotations

import pytest

from tests.support.promql import known_names, metric_names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="tasksage"} == 0', {"up"}),
        (
            "histogram_quantile(0.95, sum by (le, topic) (rate(tasksage_batch_seconds_bucket[$__rate_interval])))",
            {"tasksage_batch_seconds_bucket"},
        ),
        # Label names and values, by-lists and function names are not metrics.
        ('sum by (model) (rate(a_total{model="rate", table="sum"}[5m])) / on (model) b', {"a_total", "b"}),
        ('count({__name__="c_total", x="y"}) + max_over_time(d[5m:1m] offset 1m)', {"c_total", "d"}),
        ('label_replace(e, "dst", "$1", "src", "(.*)")', {"e"}),
        ("vector(1)", set()),
    ],
)
def test_metric_names_are_the_selected_series(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_a_regex_on_the_metric_name_cannot_be_checked() -> None:
    with pytest.raises(AssertionError, match="regex name"):
        metric_names('{__name__=~"tasksage_.*"}')


def test_declared_families_yield_their_series_names() -> None:
    metadata = {
        "tasksage_batch_seconds": [{"type": "histogram"}],
        "tasksage_retries_total": [{"type": "counter"}],
        "tasksage_healthy": [{"type": "gauge"}],
    }
    assert known_names(metadata, ["up"]) == {
        "up",
        "tasksage_batch_seconds",
        "tasksage_batch_seconds_bucket",
        "tasksage_batch_seconds_count",
        "tasksage_batch_seconds_sum",
        "tasksage_batch_seconds_created",
        "tasksage_retries_total",
        "tasksage_retries_created",
        "tasksage_healthy",
    }
