"""A bug (or a dependency failing in a way that looks like bad data) makes every record fail:
after a few dead letters in a row the handler stops dead-lettering and waits, unhealthy."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from processors.errors import InvalidEvent
from processors.failures import Backoff, Verdict
from processors.pipeline.handler import StreamHandler
from processors.records import BatchResult, Incoming, RawRecord, Rejected, SourceRef


class Buggy:
    """Stores nothing while `broken`: every event raises the same programming error."""

    changes_history = False

    def __init__(self) -> None:
        self.broken = True
        self.dead_letters: list[Rejected] = []
        self.stored: list[str] = []

    async def process(
        self, items: Sequence[Incoming[Any]], rejected: Sequence[Rejected], sources: Sequence[SourceRef]
    ) -> BatchResult:
        if items and self.broken:
            raise TypeError("expected list or ndarray, got list")
        self.dead_letters += rejected
        self.stored += [i.event for i in items]
        return BatchResult(processed=len(items), dead_lettered=len(rejected))


def decode(value: bytes, max_bytes: int) -> str:
    if value.startswith(b"bad"):
        raise InvalidEvent("not an event")
    return value.decode()


async def test_a_failing_bug_pauses_the_stream_instead_of_dead_lettering_everything() -> None:
    processor = Buggy()
    waits: list[Verdict] = []

    async def on_retry(verdict: Verdict, attempt: int, delay: float) -> None:
        waits.append(verdict)
        if len(waits) == 3:
            processor.broken = False  # the fix is deployed
        await asyncio.sleep(0)

    handler = StreamHandler(
        "s", decode, processor, max_event_bytes=1000, backoff=Backoff(0.001, 0.002), on_retry=on_retry
    )
    handler.systemic_after = 5
    records = [RawRecord("t", 0, i, None, f"event-{i}".encode()) for i in range(40)]
    result = await handler.handle(records)
    # Four dead letters, then the fifth failure in a row stops the dead-lettering.
    assert len(processor.dead_letters) == 4
    assert {r.error_class for r in processor.dead_letters} == {"TypeError"}
    assert len(waits) == 3 and all(w.retriable for w in waits)
    assert "not a data error" in waits[0].message
    assert result.processed == 36 and processor.stored == [f"event-{i}" for i in range(4, 40)]


async def test_bad_data_is_still_dead_lettered_however_much_of_it_there_is() -> None:
    processor = Buggy()
    processor.broken = False
    handler = StreamHandler("s", decode, processor, max_event_bytes=1000, backoff=Backoff(0.001, 0.002))
    handler.systemic_after = 5
    records = [RawRecord("t", 0, i, None, b"bad" if i % 2 else b"ok") for i in range(40)]
    result = await handler.handle(records)
    assert (result.processed, result.dead_lettered) == (20, 20)
