"""The failure policy in processors/pipeline/handler.py, on an in-memory processor whose batches
commit all or nothing like the real ones: bisection isolates poison records, retriable errors are
retried until they pass, nothing is lost or applied twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from processors.contracts import TaskCreated, decode_task_created, encode
from processors.errors import DatabaseUnavailable, EmbeddingUnavailable, InvalidEvent
from processors.failures import Backoff, Verdict, classify
from processors.pipeline.handler import StreamHandler
from processors.records import BatchResult, Incoming, RawRecord, Rejected, SourceRef

TOPIC = "task-created"


class Poison(Exception):
    """What a record the database cannot take raises (a constraint, an encoding problem)."""


class FakeProcessor:
    """Commits a batch only when nothing in it fails, like one PostgreSQL transaction."""

    changes_history = False

    def __init__(self, poison: Sequence[str] = (), transient: Sequence[Exception] = ()) -> None:
        self.poison = set(poison)
        self.transient = list(transient)  # raised, in order, by the next calls
        self.committed: list[str] = []
        self.dead: list[Rejected] = []
        self.positions: list[int] = []
        self.calls: list[list[str]] = []

    async def process(
        self,
        items: Sequence[Incoming[TaskCreated]],
        rejected: Sequence[Rejected],
        sources: Sequence[SourceRef],
    ) -> BatchResult:
        self.calls.append([i.event.event_id for i in items])
        if self.transient:
            raise self.transient.pop(0)
        bad = [i.event.event_id for i in items if i.event.event_id in self.poison]
        if bad:
            raise Poison(f"cannot store {bad[0]}")
        self.committed += [i.event.event_id for i in items]
        self.dead += rejected
        self.positions += [s.offset for s in sources]
        return BatchResult(processed=len(items), dead_lettered=len(rejected))


def record(offset: int, event_id: str | None = None, value: bytes | None = b"") -> RawRecord:
    if value == b"":
        value = encode(
            TaskCreated(
                event_id=event_id or f"e{offset}",
                occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
                task_id=f"T{offset}",
                description=f"task number {offset}",
            )
        )
    return RawRecord(TOPIC, 0, offset, f"T{offset}".encode(), value)


class Retries:
    def __init__(self) -> None:
        self.seen: list[tuple[Verdict, int, float]] = []

    async def __call__(self, verdict: Verdict, attempt: int, delay: float) -> None:
        self.seen.append((verdict, attempt, delay))


def handler(
    processor: FakeProcessor, retries: Retries | None = None, recovered: list[int] | None = None
) -> StreamHandler:
    return StreamHandler(
        TOPIC,
        decode_task_created,
        processor,
        max_event_bytes=10_000,
        backoff=Backoff(initial_s=0.01, max_s=0.04),
        on_retry=retries,
        on_recovered=(lambda: recovered.append(1)) if recovered is not None else None,
    )


async def test_a_clean_batch_is_one_call() -> None:
    processor = FakeProcessor()
    result = await handler(processor).handle([record(i) for i in range(5)])
    assert (result.processed, result.dead_lettered) == (5, 0)
    assert processor.calls == [[f"e{i}" for i in range(5)]]
    assert processor.positions == [0, 1, 2, 3, 4]


async def test_bisection_isolates_the_poison_record_and_keeps_the_rest() -> None:
    processor = FakeProcessor(poison=["e5"])
    records = [record(i) for i in range(11)]
    result = await handler(processor).handle(records)
    assert sorted(processor.committed) == sorted(f"e{i}" for i in range(11) if i != 5), "each once"
    assert len(processor.committed) == 10
    assert [d.event_id for d in processor.dead] == ["e5"]
    dead = processor.dead[0]
    assert (dead.source, dead.key, dead.value) == (records[5].source, records[5].key, records[5].value)
    assert dead.error_class == "Poison" and dead.error_message == "cannot store e5"
    assert (result.processed, result.dead_lettered) == (10, 1)
    assert sorted(processor.positions) == list(range(11)), "every offset is accounted for"
    # Bisection, not one call per record: about 2 log2(n) failing calls, not n.
    assert len(processor.calls) <= 2 * 4 + 4


async def test_several_poison_records_are_each_isolated() -> None:
    processor = FakeProcessor(poison=["e0", "e6", "e7"])
    result = await handler(processor).handle([record(i) for i in range(8)])
    assert sorted(d.event_id or "" for d in processor.dead) == ["e0", "e6", "e7"]
    assert sorted(processor.committed) == ["e1", "e2", "e3", "e4", "e5"]
    assert (result.processed, result.dead_lettered) == (5, 3)


async def test_records_that_cannot_be_decoded_are_rejected_without_bisection() -> None:
    processor = FakeProcessor()
    records = [record(0), record(1, value=b"{not json"), record(2, value=None), record(3)]
    result = await handler(processor).handle(records)
    assert processor.calls == [["e0", "e3"]], "decoding failures do not fail the batch"
    assert [(d.source.offset, d.error_class) for d in processor.dead] == [
        (1, "InvalidEvent"),
        (2, "InvalidEvent"),
    ]
    assert "tombstone" in processor.dead[1].error_message
    assert (result.processed, result.dead_lettered) == (2, 2)


async def test_retriable_errors_are_retried_with_backoff_until_they_pass() -> None:
    outage = [DatabaseUnavailable("connection refused"), EmbeddingUnavailable("429"), OSError("reset")]
    processor = FakeProcessor(transient=outage)
    retries, recovered = Retries(), []
    result = await handler(processor, retries, recovered).handle([record(i) for i in range(4)])
    assert processor.committed == ["e0", "e1", "e2", "e3"], "applied once, after the outage"
    assert processor.dead == []
    assert [(v.error_class, attempt) for v, attempt, _ in retries.seen] == [
        ("DatabaseUnavailable", 0),
        ("EmbeddingUnavailable", 1),
        ("OSError", 2),
    ]
    delays = [delay for _, _, delay in retries.seen]
    assert 0.005 <= delays[0] <= 0.01 and all(d <= 0.04 for d in delays), delays
    assert recovered == [1], "health is reported back once the dependency answers"
    assert result.processed == 4


async def test_a_transient_failure_during_bisection_is_retried_not_dead_lettered() -> None:
    # The batch fails on its poison record; while bisecting, the database drops once.
    processor = FakeProcessor(poison=["e3"])
    h = handler(processor, Retries())
    original = processor.process
    calls = 0

    async def flaky(*args: Any) -> BatchResult:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed")
        return await original(*args)

    processor.process = flaky  # type: ignore[method-assign]
    await h.handle([record(i) for i in range(6)])
    assert sorted(processor.committed) == ["e0", "e1", "e2", "e4", "e5"]
    assert [d.event_id for d in processor.dead] == ["e3"]


async def test_cancellation_is_not_swallowed() -> None:
    processor = FakeProcessor(transient=[asyncio.CancelledError()])
    with pytest.raises(asyncio.CancelledError):
        await handler(processor).handle([record(0)])
    assert processor.committed == [] and processor.dead == []


async def test_an_empty_batch_does_nothing() -> None:
    processor = FakeProcessor()
    result = await handler(processor).handle([])
    assert processor.calls == [] and result == BatchResult()


@pytest.mark.parametrize(
    ("error", "retriable"),
    [
        (DatabaseUnavailable("down"), True),
        (EmbeddingUnavailable("429"), True),
        (InvalidEvent("bad"), False),
        (asyncpg.exceptions.DeadlockDetectedError("deadlock"), True),
        (asyncpg.exceptions.SerializationError("conflict"), True),
        (asyncpg.exceptions.ConnectionDoesNotExistError("closed"), True),
        (asyncpg.exceptions.UniqueViolationError("dup"), False),
        (asyncpg.exceptions.DataError("out of range"), False),
        (ConnectionResetError("reset"), True),
        (TimeoutError(), True),
        (ValueError("bad value"), False),
        (KeyError("x"), False),
    ],
)
def test_classify_tells_outages_from_bad_data(error: Exception, retriable: bool) -> None:
    verdict = classify(error)
    assert verdict.retriable is retriable
    assert verdict.error_class == type(error).__name__
    assert verdict.message


@pytest.mark.parametrize(
    "error", [RecursionError("maximum recursion depth exceeded"), MemoryError(), KeyError("x")]
)
async def test_any_error_a_record_raises_while_decoding_dead_letters_it(error: Exception) -> None:
    """Decoding reads only the record: whatever a parser raises is the record's fault, and must
    reach the dead-letter topic, not the consume loop (which decodes ahead, outside `handle`)."""

    def decoder(value: bytes, max_bytes: int) -> Any:
        if b"crash" in value:
            raise error
        return decode_task_created(value, max_bytes)

    processor = FakeProcessor()
    h = handler(processor)
    h.decoder = decoder
    records = [record(0), record(1, value=b'{"crash": 1}'), record(2)]
    items, rejected = h.decode(records)
    assert [i.event.event_id for i in items] == ["e0", "e2"]
    assert [(r.source.offset, r.error_class) for r in rejected] == [(1, "InvalidEvent")]
    assert rejected[0].error_message.startswith(f"{TOPIC} record cannot be decoded: {type(error).__name__}")
    result = await h.handle(records)
    assert (result.processed, result.dead_lettered) == (2, 1)
