"""Which outbox rows go and which shrink once the broker answered (one row per batch, sql/0007)."""

from __future__ import annotations

import asyncio

from processors.postgres.ledger import OutboxCleanup, outbox_cleanup
from processors.records import OutgoingRecord
from streams.worker.publisher import _settle


def rec(value: str, outbox_id: int | None) -> OutgoingRecord:
    return OutgoingRecord("t", None, value.encode(), outbox_id=outbox_id)


def test_rows_whose_records_were_all_published_are_deleted_once() -> None:
    published = [rec("a", 1), rec("b", 1), rec("c", 2)]
    assert outbox_cleanup(published, []) == OutboxCleanup(delete=[1, 2], narrow={})


def test_a_refused_record_keeps_its_row_with_only_the_refused_records() -> None:
    a, b, c, d = rec("a", 1), rec("b", 1), rec("c", 1), rec("d", 2)
    cleanup = outbox_cleanup([a, c, d], [b])
    assert cleanup.delete == [2]
    assert cleanup.narrow == {1: [b]}


def test_records_outside_the_outbox_change_nothing() -> None:
    cleanup = outbox_cleanup([rec("snapshot", None)], [rec("lost", None)])
    assert not cleanup
    assert cleanup == OutboxCleanup()


async def test_settle_turns_broker_answers_into_the_cleanup() -> None:
    loop = asyncio.get_running_loop()
    records = [rec("a", 7), rec("b", 7), rec("c", 8)]
    futures = [loop.create_future() for _ in records]
    futures[0].set_result("metadata")
    futures[1].set_exception(RuntimeError("broker said no"))
    futures[2].set_result("metadata")
    cleanup = await _settle(records, futures)
    assert cleanup.delete == [8]
    assert cleanup.narrow == {7: [records[1]]}
