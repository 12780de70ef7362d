"""Raw record I/O on the real broker for tests: send bytes as they are, read records back with
their headers. Built on streams.kafka (the only package that imports aiokafka)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from streams.kafka import ensure_topics, make_consumer, make_producer
from streams.settings import Settings
from tests.support.waiting import eventually


@dataclass(frozen=True, slots=True)
class Record:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: dict[str, bytes]


async def send_raw(
    settings: Settings, topic: str, items: Iterable[tuple[bytes | None, bytes | None]]
) -> list[tuple[int, int]]:
    """Send (key, value) pairs in order, unvalidated, the way a broken producer would; returns
    each record's (partition, offset)."""
    assert settings.kafka_bootstrap_servers
    await ensure_topics(settings, settings.kafka_bootstrap_servers)
    producer = make_producer(settings, settings.kafka_bootstrap_servers, max_request_size=8_000_000)
    await producer.start()
    placed = []
    try:
        for key, value in items:
            meta = await producer.send_and_wait(topic, value, key=key)
            placed.append((meta.partition, meta.offset))
    finally:
        await producer.stop()
    return placed


async def read_topic(settings: Settings, topic: str, count: int, timeout_s: float = 30.0) -> list[Record]:
    """At least `count` records of `topic` from the beginning (every record seen within a short
    grace period after that, so extra records show up too), ordered by (partition, offset)."""
    assert settings.kafka_bootstrap_servers
    consumer = make_consumer(
        settings,
        settings.kafka_bootstrap_servers,
        topic,
        group_id=None,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=50,
    )
    await consumer.start()
    seen: list[Record] = []
    deadline = time.monotonic() + timeout_s
    grace_until: float | None = None
    try:
        while time.monotonic() < deadline:
            if grace_until is None and len(seen) >= count:
                grace_until = time.monotonic() + 0.5
            if grace_until is not None and time.monotonic() > grace_until:
                break
            batch = await consumer.getmany(timeout_ms=100)
            for records in batch.values():
                seen.extend(
                    Record(r.topic, r.partition, r.offset, r.key, r.value, dict(r.headers or ()))
                    for r in records
                )
    finally:
        await consumer.stop()
    if len(seen) < count:
        raise AssertionError(
            f"{topic}: expected at least {count} records within {timeout_s}s, got {len(seen)}"
        )
    return sorted(seen, key=lambda r: (r.partition, r.offset))


async def settle(seconds: float = 0.3) -> None:
    """Give the worker a moment to show it would (wrongly) do more; used before negative checks."""
    await asyncio.sleep(seconds)


async def wait_consumed(
    conn: Any, settings: Settings, expected: dict[str, int], timeout_s: float = 30.0
) -> None:
    """Wait until the worker's stored positions cover `expected[topic]` records of each topic
    (fresh topics start at offset 0, so the positions sum to the records consumed)."""

    async def consumed() -> dict[str, int]:
        rows = await conn.fetch(
            """SELECT topic, sum(next_offset)::bigint AS n FROM consumer_positions
               WHERE group_id = $1 GROUP BY topic""",
            settings.consumer_group,
        )
        return {r["topic"]: int(r["n"]) for r in rows}

    await eventually(consumed, lambda got: all(got.get(t, 0) >= n for t, n in expected.items()), timeout_s)
