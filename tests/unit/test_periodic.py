"""The upkeep steps' failure handling: a retriable failure waits the growing retry backoff, one
that retrying does not mend waits the longest at once and is logged as an error with its
traceback, and a step that works again says so once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from processors.failures import Backoff
from streams.worker.periodic import FailureStreak, every

BACKOFF = Backoff(initial_s=0.04, max_s=0.32)  # ceilings 0.04, 0.08, 0.16, 0.32: waits in [c/2, c]


def test_a_retriable_failure_waits_the_growing_backoff(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streams.worker.periodic")
    streak = FailureStreak("merging", BACKOFF)
    waits = []
    for _ in range(5):
        streak.failed(ConnectionError("connection refused"))
        assert not streak.ready()
        waits.append(streak.nap_s(0.0))
    ceilings = [0.04, 0.08, 0.16, 0.32, 0.32]
    assert all(c / 2 - 0.01 <= w <= c for w, c in zip(waits, ceilings, strict=True)), waits
    assert [r.levelno for r in caplog.records] == [logging.WARNING] * 5
    assert caplog.records[0].getMessage().startswith("merging failed (1 in a row, next try in 0.0")
    assert caplog.records[4].getMessage().endswith("): connection refused")


def test_a_failure_retrying_does_not_mend_waits_the_longest_backoff_and_logs_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streams.worker.periodic")
    streak = FailureStreak("learning", BACKOFF)
    streak.failed(ValueError("unknown type: public.vector"))
    assert 0.3 <= streak.nap_s(0.0) <= 0.32
    [record] = caplog.records
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert record.getMessage() == (
        "learning failed with ValueError, which retrying does not mend: a bug or data it cannot read"
        " (1 in a row, next try in 0.32 s): unknown type: public.vector"
    )


def test_a_failing_step_never_naps_less_than_a_working_one() -> None:
    streak = FailureStreak("retention pass", BACKOFF)
    assert streak.nap_s(60.0) == 60.0
    streak.failed(ConnectionError("down"))
    assert streak.nap_s(60.0) == 60.0  # the backoff is shorter than the step's interval
    assert streak.nap_s(0.0) > 0.0


def test_works_again_is_said_once_with_the_number_of_failures(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="streams.worker.periodic")
    streak = FailureStreak("outbox sweep", BACKOFF)
    streak.succeeded()
    for _ in range(3):
        streak.failed(OSError("broker away"))
    streak.succeeded()
    streak.succeeded()
    assert streak.ready() and streak.count == 0
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["outbox sweep works again after 3 failures in a row"]


async def test_every_retries_a_failing_step_after_its_backoff_and_runs_it_each_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="streams.worker.periodic")
    stopping = asyncio.Event()
    calls: list[float] = []
    loop = asyncio.get_running_loop()

    async def step() -> None:
        calls.append(loop.time())
        if len(calls) <= 2:
            raise ConnectionError("database away")
        if len(calls) == 4:
            stopping.set()

    started = loop.time()
    await every("snapshot", step, 0.01, stopping, Backoff(initial_s=0.1, max_s=0.2), first_at_start=True)
    assert len(calls) == 4
    gaps = [b - a for a, b in zip([started, *calls], calls, strict=False)]
    assert gaps[0] < 0.05  # first_at_start: at once
    assert gaps[1] >= 0.05  # after the first failure: its backoff (0.05-0.1 s)
    assert gaps[2] >= 0.1  # after the second: 0.1-0.2 s
    assert gaps[3] < 0.09  # working again: the step's own interval
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert messages[2] == "snapshot works again after 2 failures in a row"


async def test_every_waits_one_interval_first_unless_told_and_stops_when_asked() -> None:
    stopping = asyncio.Event()
    calls = 0

    async def step() -> None:
        nonlocal calls
        calls += 1

    stopping.set()
    await every("insights refresh", step, 5.0, stopping, BACKOFF, first_at_start=False)
    assert calls == 0
    await every("retention pass", step, 5.0, stopping, BACKOFF, first_at_start=True)
    assert calls == 1
