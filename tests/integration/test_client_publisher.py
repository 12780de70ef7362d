"""The client library's publisher keeps the order of what it sends to one partition: idempotent on
Apache Kafka, a plain producer on Tansu, which refuses one (TASKSAGE_KAFKA_IDEMPOTENCE=auto)."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from processors.contracts import TaskCreated
from streams.client import TasksagePublisher
from tests.support.topics import read_topic


def _task(n: int) -> TaskCreated:
    return TaskCreated(
        event_id=f"created-{n}",
        occurred_at=datetime(2026, 5, 4, 9, 0, tzinfo=UTC),
        task_id=f"T{n}",
        description=f"summarise incident report number {n}",
        kind="research",
    )


async def test_the_publisher_sends_in_order_idempotently_where_the_broker_allows(
    settings, endpoints, broker_kind
) -> None:
    async with TasksagePublisher(settings) as publisher:
        idempotent = publisher.producer._txn_manager is not None
        for n in range(40):
            await publisher.publish_task(_task(n), wait=False)
        await publisher.flush()
    assert idempotent is (broker_kind == "kafka")
    records = await read_topic(settings, settings.topic_task_created, 40)
    sent = [f"T{n}" for n in range(40)]
    by_partition: dict[int, list[str]] = {}
    for record in records:
        by_partition.setdefault(record.partition, []).append(orjson.loads(record.value)["task_id"])
    for received in by_partition.values():
        assert received == sorted(received, key=sent.index)  # each partition in the order sent
    assert sorted(t for received in by_partition.values() for t in received) == sorted(sent)


def test_the_publisher_sends_only_inside_async_with(settings) -> None:
    with pytest.raises(RuntimeError, match="async with"):
        _ = TasksagePublisher(settings, bootstrap="127.0.0.1:9").producer
