"""Dependency-aware order on small graphs with known answers, cycles and unknown ids included."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from processors.scheduling.dependencies import DependencyProblem, order_by_dependencies
from processors.scheduling.types import PendingTask

NOW = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


def scored(**scores: float) -> list[tuple[PendingTask, float]]:
    return [(PendingTask(t, 0, None, NOW, 0.8, 1000.0, "a", "m"), s) for t, s in scores.items()]


def ids(result: object) -> list[tuple[str, tuple[str, ...]]]:
    return [(o.task.task_id, o.blocked_by) for o in result.tasks]  # type: ignore[attr-defined]


def test_a_high_priority_dependent_waits_for_its_dependency() -> None:
    # T-2 scores highest but needs D-1, which is pending: D-1 first, T-2 after all ready work.
    got = order_by_dependencies(scored(**{"T-2": 9.0, "D-1": 1.0, "X": 5.0}), {"T-2": ["D-1"]}, {})
    assert ids(got) == [("X", ()), ("D-1", ()), ("T-2", ("D-1",))]
    assert got.problems == ()
    assert got.blocked_count == 1


def test_succeeded_dependency_frees_the_task_and_failed_one_does_not() -> None:
    tasks = scored(A=3.0, B=2.0, C=1.0)
    got = order_by_dependencies(
        tasks, {"A": ["done"], "B": ["broken"]}, {"done": "succeeded", "broken": "failed"}
    )
    assert ids(got) == [("A", ()), ("C", ()), ("B", ("broken",))]


def test_chain_keeps_topological_order_whatever_the_scores() -> None:
    # C needs B needs A; scores are the reverse of the order they must run in.
    got = order_by_dependencies(scored(A=1.0, B=2.0, C=3.0, Z=0.5), {"C": ["B"], "B": ["A"]}, {})
    assert ids(got) == [("A", ()), ("Z", ()), ("B", ("A",)), ("C", ("B",))]


def test_diamond_lists_the_best_scored_branch_first() -> None:
    got = order_by_dependencies(
        scored(root=1.0, left=2.0, right=5.0, join=9.0),
        {"left": ["root"], "right": ["root"], "join": ["left", "right"]},
        {},
    )
    assert ids(got) == [("root", ()), ("right", ("root",)), ("left", ("root",)), ("join", ("left", "right"))]


def test_cycle_is_reported_and_listed_last_without_looping() -> None:
    got = order_by_dependencies(
        scored(A=5.0, B=4.0, C=3.0, D=2.0, E=1.0),
        {"A": ["B"], "B": ["C"], "C": ["A"], "D": ["A"]},
        {},
    )
    assert ids(got) == [("E", ()), ("A", ("B",)), ("B", ("C",)), ("C", ("A",)), ("D", ("A",))]
    assert got.problems == (DependencyProblem("cycle", ("A", "B", "C")),)


def test_self_dependency_and_two_separate_cycles() -> None:
    got = order_by_dependencies(
        scored(S=1.0, P=1.0, Q=1.0, R=1.0, U=1.0),
        {"S": ["S"], "P": ["Q"], "Q": ["P"], "R": ["U"], "U": ["R"]},
        {},
    )
    assert sorted(p.task_ids for p in got.problems) == [("P", "Q"), ("R", "U"), ("S",)]
    assert {p.kind for p in got.problems} == {"cycle"}
    assert got.blocked_count == 5


def test_unknown_dependency_is_reported_and_blocks() -> None:
    got = order_by_dependencies(scored(T=9.0, K=1.0), {"T": ["ghost", "K"]}, {})
    assert ids(got) == [("K", ()), ("T", ("K", "ghost"))]
    assert got.problems == (DependencyProblem("unknown_dependency", ("T",), ("ghost",)),)


def test_without_dependencies_the_order_is_the_score_order() -> None:
    got = order_by_dependencies(scored(a=1.0, b=3.0, c=2.0), {}, {})
    assert ids(got) == [("b", ()), ("c", ()), ("a", ())]


@given(
    st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=30),
    st.lists(st.floats(-5, 5), min_size=12, max_size=12),
)
def test_no_task_precedes_a_pending_dependency(edges: list[tuple[int, int]], scores: list[float]) -> None:
    tasks = scored(**{f"t{i}": s for i, s in enumerate(scores)})
    deps: dict[str, list[str]] = {}
    for a, b in edges:
        deps.setdefault(f"t{a}", []).append(f"t{b}")
    got = order_by_dependencies(tasks, deps, {})
    position = {o.task.task_id: i for i, o in enumerate(got.tasks)}
    assert sorted(position) == sorted(f"t{i}" for i in range(12))
    cycle_of = {t: p.task_ids for p in got.problems if p.kind == "cycle" for t in p.task_ids}
    for o in got.tasks:
        me = o.task.task_id
        for d in deps.get(me, []):
            assert d in o.blocked_by
            same_cycle = d == me or (me in cycle_of and d in cycle_of[me])
            if not same_cycle:
                assert position[d] < position[me]
        assert bool(o.blocked_by) == (me in deps)
