"""Publish a planned workload at a steady pace and watch the worker's progress."""

from __future__ import annotations

import asyncio
import time

import asyncpg

from streams.settings import Settings
from tests.faults.workload import Planned
from tests.support.processes import Placed, RawProducer


def topic_of(settings: Settings, stream: str) -> str:
    return settings.input_topics[stream]


async def publish_paced(
    settings: Settings, planned: list[Planned], duration_s: float, chunk: int = 100
) -> list[Placed]:
    """Send everything in chunks spread over about `duration_s` seconds; returns placements in order."""
    placed: list[Placed] = []
    chunks = [planned[i : i + chunk] for i in range(0, len(planned), chunk)]
    pause = duration_s / max(1, len(chunks))
    async with RawProducer(settings) as producer:
        for part in chunks:
            started = time.monotonic()
            placed += await producer.send([(topic_of(settings, p.stream), p.key, p.value) for p in part])
            await asyncio.sleep(max(0.0, pause - (time.monotonic() - started)))
    return placed


async def inbox_total(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM inbox"))
    except asyncpg.UndefinedTableError:  # before the first worker migrated the database
        return 0
    finally:
        await conn.close()


async def wait_for_progress(dsn: str, beyond: int, timeout_s: float) -> float | None:
    """Seconds until the inbox grows past `beyond`; None if it did not within `timeout_s`."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        if await inbox_total(dsn) > beyond:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def diagnose(settings: Settings, dsn: str) -> str:
    """Stored positions, inbox high-water marks and log ends, for a failure message."""
    from aiokafka import TopicPartition

    from streams.kafka import make_consumer

    conn = await asyncpg.connect(dsn)
    try:
        positions = await conn.fetch(
            "SELECT topic, partition, next_offset FROM consumer_positions ORDER BY 1, 2"
        )
        inbox = await conn.fetch(
            'SELECT topic, partition, max("offset") AS hi, count(*) AS n FROM inbox GROUP BY 1, 2 ORDER BY 1, 2'
        )
        outbox = await conn.fetchval("SELECT count(*) FROM outbox")
    finally:
        await conn.close()
    assert settings.kafka_bootstrap_servers
    consumer = make_consumer(settings, settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, p)
            for t in settings.input_topics.values()
            for p in range(settings.topic_partitions)
        ]
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    lines = [f"outbox rows: {outbox}"]
    lines += [f"position {r['topic']}[{r['partition']}] = {r['next_offset']}" for r in positions]
    lines += [f"inbox {r['topic']}[{r['partition']}] max offset {r['hi']} rows {r['n']}" for r in inbox]
    lines += [f"log end {tp.topic}[{tp.partition}] = {end}" for tp, end in sorted(ends.items())]
    return "\n".join(lines)
