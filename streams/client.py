"""A small typed client for upstream and downstream services (the CLI is built on it).

async with TasksagePublisher(settings) as publisher:
    await publisher.publish_task(TaskCreated(...))

async for schedule in schedules(settings, from_beginning=True):
    print(schedule.task_id, schedule.agent, schedule.model)
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.contracts import (
    ExecutionResult,
    MessageIngested,
    ScheduleSnapshot,
    TaskCreated,
    TaskSchedule,
    encode,
)
from processors.contracts.codec import decode_schedule_snapshot, decode_task_schedule
from processors.contracts.inputs import BY_NAME, DECODERS
from processors.errors import InvalidEvent
from streams.kafka import make_consumer, start_producer
from streams.runtime import resolve_endpoints
from streams.settings import Settings


def new_event_id() -> str:
    return str(uuid.uuid4())


def complete_event(doc: Mapping[str, Any]) -> dict[str, Any]:
    """Fill the envelope fields a caller may leave out (event_id, schema_version, occurred_at)."""
    out = dict(doc)
    out.setdefault("event_id", new_event_id())
    out.setdefault("schema_version", 1)
    out.setdefault("occurred_at", datetime.now(UTC).isoformat())
    return out


class TasksagePublisher:
    """Validates each event against its published schema before sending it, and keeps the order of
    the events it sends to one partition: its producer is the idempotent one where the broker
    allows it (`TASKSAGE_KAFKA_IDEMPOTENCE`, as for the worker's outputs). A plain producer that
    retries a batch after a leader change can send a later batch of the same partition ahead of
    it, and then a task's events reach the worker out of the order they were published in."""

    def __init__(self, settings: Settings, bootstrap: str | None = None) -> None:
        self.settings = settings
        self.bootstrap = bootstrap or resolve_endpoints(settings).bootstrap
        self.topics = settings.input_topics
        self._producer: AIOKafkaProducer | None = None

    @property
    def producer(self) -> AIOKafkaProducer:
        if self._producer is None:
            raise RuntimeError("TasksagePublisher sends only inside `async with`, which starts its producer")
        return self._producer

    async def __aenter__(self) -> TasksagePublisher:
        self._producer = await start_producer(self.settings, self.bootstrap)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._producer is not None:
            await self._producer.stop()
            self._producer = None

    async def publish_raw(self, event_type: str, payload: bytes, *, wait: bool = True) -> Any:
        """Validate and send one JSON document. Raises InvalidEvent with the reason."""
        if event_type not in DECODERS:
            raise InvalidEvent(f"unknown event type {event_type!r}; use one of {', '.join(DECODERS)}")
        event = DECODERS[event_type](payload, self.settings.max_event_bytes)
        key = getattr(event, BY_NAME[event_type].key_field).encode()
        future = await self.producer.send(self.topics[event_type], payload, key=key)
        return await future if wait else future

    async def publish_document(self, event_type: str, doc: Mapping[str, Any], *, wait: bool = True) -> Any:
        return await self.publish_raw(event_type, orjson.dumps(complete_event(doc)), wait=wait)

    async def publish_task(self, event: TaskCreated, *, wait: bool = True) -> Any:
        return await self.publish_raw("task-created", encode(event), wait=wait)

    async def publish_result(self, event: ExecutionResult, *, wait: bool = True) -> Any:
        return await self.publish_raw("execution-result", encode(event), wait=wait)

    async def publish_message(self, event: MessageIngested, *, wait: bool = True) -> Any:
        return await self.publish_raw("message-ingested", encode(event), wait=wait)

    async def flush(self) -> None:
        await self.producer.flush()


async def schedules(
    settings: Settings,
    *,
    from_beginning: bool = False,
    group_id: str | None = None,
    bootstrap: str | None = None,
) -> AsyncIterator[TaskSchedule]:
    """Typed task-schedule records, as they arrive. Deduplicate by `event_id` if you need to."""
    async for value in records(
        settings,
        settings.topic_task_schedules,
        from_beginning=from_beginning,
        group_id=group_id,
        bootstrap=bootstrap,
    ):
        yield decode_task_schedule(value)


async def snapshots(
    settings: Settings,
    *,
    from_beginning: bool = False,
    group_id: str | None = None,
    bootstrap: str | None = None,
) -> AsyncIterator[ScheduleSnapshot]:
    """Typed schedule snapshots: the ranked order of pending tasks, newest last."""
    async for value in records(
        settings,
        settings.topic_schedule_snapshots,
        from_beginning=from_beginning,
        group_id=group_id,
        bootstrap=bootstrap,
    ):
        yield decode_schedule_snapshot(value)


async def records(
    settings: Settings,
    topic: str,
    *,
    from_beginning: bool = False,
    group_id: str | None = None,
    bootstrap: str | None = None,
) -> AsyncIterator[bytes]:
    consumer: AIOKafkaConsumer = make_consumer(
        settings,
        bootstrap or resolve_endpoints(settings).bootstrap,
        topic,
        group_id=group_id,
        auto_offset_reset="earliest" if from_beginning else "latest",
        enable_auto_commit=group_id is not None,
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    try:
        async for message in consumer:
            if message.value is not None:
                yield message.value
    finally:
        await consumer.stop()
