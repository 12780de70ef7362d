"""The database reference loop's events and batches (no database needed)."""

from __future__ import annotations

from streams.bench.database import PHASE, as_batches, stream_events
from streams.bench.report import FIRST_OUTCOME_EVERY
from streams.bench.workload import BenchWorkload


def test_results_give_first_outcomes_to_the_loops_own_new_tasks() -> None:
    workload = BenchWorkload("run1")
    created: list[str] = []
    tasks = stream_events(workload, "task-created", PHASE, 12, history=300, created=created)
    assert [t.task_id for t in tasks] == created
    results = stream_events(workload, "execution-result", PHASE, 12, history=300, created=created)
    firsts = [r.task_id for i, r in enumerate(results, 1) if i % FIRST_OUTCOME_EVERY == 0]
    assert firsts == [tasks[-1].task_id, tasks[-2].task_id]
    others = [r.task_id for i, r in enumerate(results, 1) if i % FIRST_OUTCOME_EVERY]
    assert all(t.startswith("run1-h") for t in others)  # outcomes of preloaded history
    assert len(created) == 10
    ids = [e.event_id for e in tasks + results]
    assert all(f"-{PHASE}-" in i for i in ids) and len(set(ids)) == len(ids)


def test_batches_spread_events_over_partitions_with_rising_offsets() -> None:
    batches = as_batches(list("abcde"), "topic.dbref", partitions=2, size=2)
    assert [[i.event for i in b] for b in batches] == [["a", "b"], ["c", "d"], ["e"]]
    sources = [(i.source.partition, i.source.offset) for b in batches for i in b]
    assert sources == [(0, 0), (1, 0), (0, 1), (1, 1), (0, 2)]
    assert as_batches([], "t", partitions=2, size=2) == []
