"""Which records run one at a time after the worker died, and which one is a poison pill
(processors/pipeline/attempts.py; the notes themselves are tested with the real worker in
tests/faults/test_poison_pill.py)."""

from __future__ import annotations

from typing import Any

from processors.pipeline.attempts import AttemptTracker
from processors.postgres.attempts import Attempt
from processors.records import RawRecord


def record(offset: int, partition: int = 0) -> RawRecord:
    return RawRecord("t", partition, offset, None, b"{}")


def tracker(*died: Attempt) -> AttemptTracker:
    t = AttemptTracker(pool=Any, group_id="g", poison_after=2)  # type: ignore[arg-type]
    t.suspects = {(a.topic, a.partition): a for a in died}
    return t


def test_only_batches_overlapping_what_the_process_died_on_are_suspected() -> None:
    t = tracker(Attempt("t", 0, 10, 20, 1))
    assert t.suspected([Attempt("t", 0, 19, 25, 0)])
    assert t.suspected([Attempt("t", 0, 5, 11, 0)])
    assert not t.suspected([Attempt("t", 0, 20, 30, 0)])
    assert not t.suspected([Attempt("t", 1, 10, 20, 0)])


def test_a_poison_pill_is_a_record_the_process_died_on_alone_often_enough() -> None:
    assert tracker(Attempt("t", 0, 10, 20, 5)).poison(record(10)) is None, "in a batch: not named"
    assert tracker(Attempt("t", 0, 10, 11, 1)).poison(record(10)) is None, "once is not enough"
    assert tracker(Attempt("t", 0, 10, 11, 2)).poison(record(11)) is None
    reason = tracker(Attempt("t", 0, 10, 11, 2)).poison(record(10))
    assert reason is not None and reason.startswith(
        "poison pill: crashed the worker 2 times in a row at t[0] offset 10"
    )


def test_a_suspect_range_ends_with_its_last_record() -> None:
    t = tracker(Attempt("t", 0, 10, 12, 1))
    t.passed(record(10))
    assert ("t", 0) in t.suspects
    t.passed(record(11))
    assert t.suspects == {}
