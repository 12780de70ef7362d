"""Failure patterns, capability gaps and arm flags on small hand-made data with known answers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from processors.insights.arms import ArmActivity, ArmUsageConfig, arm_reports
from processors.insights.failures import (
    FailedExecution,
    FailureClusters,
    assign,
    cluster_count,
    describe,
    points,
)
from processors.insights.gaps import RecentTask, find_gaps
from processors.scheduling.types import Arm

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)
WEAK, GOOD = Arm("coder", "small"), Arm("coder", "large")


def blob(centre: int, n: int, dim: int = 8, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed + centre)
    base = np.zeros(dim, dtype=np.float32)
    base[centre] = 1.0
    return (base + rng.normal(0, 0.05, (n, dim))).astype(np.float32)


def test_cluster_count_rule() -> None:
    assert [cluster_count(n, 12) for n in (1, 2, 8, 50, 10_000)] == [1, 1, 3, 7, 12]


def test_one_arm_failing_on_one_family_is_the_worst_cluster() -> None:
    # 12 failures of WEAK on family A (task axis 0, error axis 1), 4 scattered failures of GOOD
    # on family B (task axis 2, error axis 3). WEAK ran 12 times on A (all failed) and 28 times on
    # B (none failed); GOOD ran 40 times on B and failed 4.
    fails = [
        FailedExecution(f"e{i}", f"A{i}", WEAK, "code", f"task A{i}", "sandbox refused") for i in range(12)
    ]
    fails += [FailedExecution(f"g{i}", f"B{i}", GOOD, "ops", f"task B{i}", "timeout") for i in range(4)]
    pts = points(np.vstack([blob(0, 12), blob(2, 4)]), np.vstack([blob(1, 12), blob(3, 4)]))
    clusters = FailureClusters(max_clusters=2)
    clusters.refit(fails, pts)
    executions = [(WEAK, False)] * 12 + [(WEAK, True)] * 28 + [(GOOD, True)] * 36 + [(GOOD, False)] * 4
    vectors = np.vstack([blob(0, 12), blob(2, 28), blob(2, 40)])
    labels = assign(vectors, clusters.task_centres(8))
    overall = {WEAK: (40, 12), GOOD: (40, 4)}
    found = describe(clusters, executions, labels, overall)
    worst = found[0]
    assert worst.size == 12
    assert [(a.arm, a.failures, a.executions) for a in worst.arms] == [(WEAK, 12, 12)]
    assert worst.failure_rate == 1.0
    assert worst.overall_failure_rate == pytest.approx(0.3)
    assert worst.lift == pytest.approx(1 / 0.3)
    assert worst.p_value == pytest.approx(0.3**12)  # 12 failures in 12 runs at a 30% base rate
    assert worst.kinds == (("code", 12),)
    assert len(worst.representatives) == 3
    assert all(r.error_message == "sandbox refused" for r in worst.representatives)
    second = found[1]
    assert second.failure_rate == pytest.approx(4 / 40)
    assert second.executions == 40
    assert second.lift == pytest.approx(1.0)
    assert second.p_value > 0.5


def test_new_failures_join_without_a_refit() -> None:
    fails = [FailedExecution(f"e{i}", f"A{i}", WEAK, "code", "a", "x") for i in range(8)]
    clusters = FailureClusters(max_clusters=2)
    clusters.refit(fails, points(np.vstack([blob(0, 4), blob(2, 4)]), np.vstack([blob(1, 4), blob(3, 4)])))
    first = clusters.labels.copy()
    more = [FailedExecution("n1", "N1", WEAK, "code", "a", "x")]
    clusters.join(more, points(blob(2, 1, seed=9), blob(3, 1, seed=9)))
    assert list(clusters.labels[:8]) == list(first)
    assert clusters.labels[8] == first[4]  # joins the cluster of the tasks like it
    assert len(clusters.samples) == 9


def test_a_family_no_arm_can_do_is_a_gap_and_the_rest_is_not() -> None:
    tasks = [RecentTask(f"H{i}", "ml", "train model", {GOOD: 0.2, WEAK: 0.05}) for i in range(6)]
    tasks += [RecentTask(f"E{i}", "qa", "answer", {GOOD: 0.95, WEAK: 0.9}) for i in range(6)]
    vectors = np.vstack([blob(0, 6), blob(4, 6)])
    gaps = find_gaps(tasks, vectors, target=0.8, max_clusters=2)
    assert len(gaps) == 1
    assert gaps[0].tasks == 6
    assert gaps[0].best_arm == GOOD
    assert gaps[0].best_probability == pytest.approx(0.2)
    assert gaps[0].kinds == (("ml", 6),)


def activity(arm: Arm, **kw: object) -> ArmActivity:
    base: dict[str, object] = dict(
        configured=True,
        schedules=10,
        outcomes=10,
        successes=8,
        cost_sum_usd=1.0,
        cost_n=10,
        pending=0,
        recent_outcomes=24,
        last_scheduled_at=NOW - timedelta(hours=1),
        candidate_in=10,
        cheapest_meeting_target=5,
    )
    base.update(kw)
    return ArmActivity(arm, **base)  # type: ignore[arg-type]


def test_arm_flags_and_shares() -> None:
    idle = Arm("translator", "small")
    pricey = Arm("generalist", "large")
    busy = Arm("generalist", "small")
    reports = arm_reports(
        [
            activity(busy, schedules=30, outcomes=20, pending=5),  # 1 per hour finishes, 5 waiting
            activity(pricey, cheapest_meeting_target=0),
            activity(
                idle, schedules=0, outcomes=0, successes=0, cost_n=0, last_scheduled_at=None, candidate_in=0
            ),
            activity(Arm("old", "m"), last_scheduled_at=NOW - timedelta(days=30)),
        ],
        NOW,
        ArmUsageConfig(unused_days=7, overload_hours=1, throughput_window_hours=24),
    )
    by_arm = {r.arm: r for r in reports}
    assert by_arm[busy].flags == ("overloaded",)
    assert by_arm[busy].schedule_share == pytest.approx(30 / 50)
    assert by_arm[busy].throughput_per_hour == pytest.approx(1.0)
    assert by_arm[pricey].flags == ("dominated",)
    assert by_arm[idle].flags == ("unused",)
    assert by_arm[idle].success_rate is None
    assert by_arm[Arm("old", "m")].flags == ("unused",)
    assert by_arm[pricey].mean_cost_usd == pytest.approx(0.1)
