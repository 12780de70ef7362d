"""Ranking pending work: explicit score, monotone in priority and urgency, stable ties."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.scheduling import PendingTask, RankingConfig, deadline_urgency, rank_pending, task_score
from processors.scheduling.ranking import top_ranked

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
CONFIG = RankingConfig()


def pending(
    task_id: str = "t",
    *,
    priority: int = 0,
    deadline: datetime | None = None,
    created_at: datetime = NOW,
    p: float = 0.8,
    duration_ms: float | None = 10_000.0,
) -> PendingTask:
    return PendingTask(task_id, priority, deadline, created_at, p, duration_ms, "generalist", "small")


def order(tasks: list[PendingTask]) -> list[str]:
    return [t.task_id for t, _ in rank_pending(tasks, NOW, CONFIG)]


def test_each_factor_moves_a_task_up() -> None:
    assert order([pending("low", priority=1), pending("high", priority=5)]) == ["high", "low"]
    assert order([pending("unlikely", p=0.2), pending("likely", p=0.9)]) == ["likely", "unlikely"]
    assert order([pending("long", duration_ms=3_600_000), pending("short", duration_ms=1000)]) == [
        "short",
        "long",
    ]
    soon = pending("soon", deadline=NOW + timedelta(minutes=5))
    later = pending("later", deadline=NOW + timedelta(days=1))
    assert order([later, pending("none"), soon]) == ["soon", "later", "none"]
    old = pending("old", created_at=NOW - timedelta(days=2))
    assert order([pending("new"), old]) == ["old", "new"]


def test_scores_are_explicit() -> None:
    t = pending(priority=2, p=0.5, duration_ms=1000.0, created_at=NOW - timedelta(hours=3))
    expected = 1.0 * 2 + 2.0 * 0.5 - 0.5 * 3.0 + 0.0 + 0.1 * 3
    assert task_score(t, NOW, CONFIG) == pytest.approx(expected)
    unknown = msgspec.structs.replace(t, predicted_duration_ms=None)
    assert task_score(unknown, NOW, CONFIG) == pytest.approx(expected + 0.5 * 3.0 - 0.5 * 4.778151250)


def test_deadline_urgency_rises_and_overdue_is_maximal() -> None:
    assert deadline_urgency(None, NOW, 3600) == 0.0
    assert deadline_urgency(NOW + timedelta(hours=1), NOW, 3600) == pytest.approx(0.36787944)
    assert deadline_urgency(NOW, NOW, 3600) == 1.0
    assert deadline_urgency(NOW - timedelta(days=3), NOW, 3600) == 1.0


@given(a=st.integers(-(10**6), 10**6), b=st.integers(-(10**6), 10**6))
def test_urgency_is_monotone_in_time_left(a: int, b: int) -> None:
    nearer, farther = sorted((a, b))
    u_near = deadline_urgency(NOW + timedelta(seconds=nearer), NOW, 3600)
    u_far = deadline_urgency(NOW + timedelta(seconds=farther), NOW, 3600)
    assert 0.0 <= u_far <= u_near <= 1.0


task_st = st.builds(
    pending,
    task_id=st.text(min_size=1, max_size=4),
    priority=st.integers(0, 100),
    deadline=st.none() | st.integers(-86_400, 86_400 * 7).map(lambda s: NOW + timedelta(seconds=s)),
    created_at=st.integers(0, 86_400 * 30).map(lambda s: NOW - timedelta(seconds=s)),
    p=st.floats(0, 1),
    duration_ms=st.none() | st.floats(0, 1e8),
)


@given(task_st, st.integers(1, 50))
def test_score_is_monotone_in_priority(task: PendingTask, bump: int) -> None:
    higher = msgspec.structs.replace(task, priority=task.priority + bump)
    assert task_score(higher, NOW, CONFIG) > task_score(task, NOW, CONFIG)


@given(task_st, st.integers(1, 86_400))
def test_an_earlier_deadline_never_lowers_the_score(task: PendingTask, earlier_s: int) -> None:
    base = msgspec.structs.replace(task, deadline=task.deadline or NOW + timedelta(days=1))
    assert base.deadline is not None
    sooner = msgspec.structs.replace(base, deadline=base.deadline - timedelta(seconds=earlier_s))
    assert task_score(sooner, NOW, CONFIG) >= task_score(base, NOW, CONFIG)


@given(st.lists(task_st, max_size=30))
def test_ranking_is_sorted_complete_and_ties_are_stable(tasks: list[PendingTask]) -> None:
    ranked = rank_pending(tasks, NOW, CONFIG)
    assert sorted(id(t) for t, _ in ranked) == sorted(id(t) for t in tasks)
    for (a, sa), (b, sb) in itertools.pairwise(ranked):
        assert sa >= sb
        if sa == sb:
            assert (a.created_at, a.task_id) <= (b.created_at, b.task_id)
    keys = [(s, t.created_at, t.task_id) for t, s in rank_pending(list(reversed(tasks)), NOW, CONFIG)]
    assert keys == [(s, t.created_at, t.task_id) for t, s in ranked]  # input order does not matter


def test_equal_scores_go_oldest_first_then_by_id() -> None:
    no_aging = RankingConfig(age_weight=0.0)
    tasks = [
        pending("b", created_at=NOW - timedelta(hours=1)),
        pending("a", created_at=NOW - timedelta(hours=1)),
        pending("c", created_at=NOW - timedelta(hours=2)),
    ]
    assert [t.task_id for t, _ in rank_pending(tasks, NOW, no_aging)] == ["c", "a", "b"]


@given(st.lists(task_st, max_size=40), st.integers(0, 45))
def test_top_ranked_is_the_head_of_the_full_ranking(tasks: list[PendingTask], n: int) -> None:
    config = RankingConfig()
    scored = [(t, task_score(t, NOW, config)) for t in tasks]
    assert top_ranked(scored, n) == rank_pending(tasks, NOW, config)[:n]
