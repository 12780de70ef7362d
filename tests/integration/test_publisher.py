"""The publisher hands records to the producer as one batch per partition: every record
arrives once, in order per key, on the partition its key maps to, with its headers."""

from __future__ import annotations

from collections import defaultdict

import asyncpg

from processors.postgres.migrations import migrate
from processors.postgres.pool import create_pool
from processors.records import OutgoingRecord
from streams.kafka import ensure_topics, make_producer
from streams.worker.publisher import Publisher
from tests.support.topics import read_topic

HEADERS = (("__connect.errors.topic", b"task-created"), ("tasksage.event_id", b"e-7"))


def _records(topic: str) -> list[OutgoingRecord]:
    keyed = [
        OutgoingRecord(topic, f"task-{n % 30}".encode(), f"{n:04d}:".encode() + b"x" * 700)
        for n in range(300)
    ]
    keyless = [OutgoingRecord(topic, None, f"free-{n}".encode()) for n in range(20)]
    dead = [OutgoingRecord(topic, f"dead-{n}".encode(), f"dead-{n}".encode(), HEADERS) for n in range(5)]
    return keyed[:150] + keyless + dead + keyed[150:]


async def test_batches_per_partition_keep_every_record_its_key_order_and_headers(
    make_settings, endpoints
) -> None:
    settings = make_settings()
    await ensure_topics(settings, endpoints.bootstrap)
    await ensure_topics(settings, endpoints.bootstrap, [settings.topic_task_schedules + "-probe"])
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn)  # the pool's connections register the vector type
    finally:
        await conn.close()
    topic = settings.topic_task_schedules
    # Small producer batches, so that a partition's records fill several of them.
    producer = make_producer(settings, endpoints.bootstrap, max_batch_size=16_384)
    pool = await create_pool(endpoints.dsn)
    await producer.start()
    try:
        records = _records(topic)
        await Publisher(producer, pool).publish(records)
        # Where the producer's own send() puts each key: batches must agree with it.
        probes = {}
        for key in {r.key for r in records if r.key is not None}:
            probes[key] = (await producer.send_and_wait(topic + "-probe", b"probe", key=key)).partition
    finally:
        await producer.stop()
        await pool.close()
    seen = await read_topic(settings, topic, len(records))

    assert sorted(r.value for r in seen) == sorted(r.value for r in records), "each record exactly once"
    by_key: dict[bytes | None, list[tuple[int, int, bytes]]] = defaultdict(list)
    for r in seen:
        assert r.value is not None
        by_key[r.key].append((r.partition, r.offset, r.value))
    for key, placed in by_key.items():
        assert len({p for p, _, _ in placed}) == 1, f"{key!r} spread over partitions"
        if key is not None:
            assert placed[0][0] == probes[key], "not the partition the producer's send() picks"
        in_log_order = [v for _, _, v in sorted(placed)]
        assert in_log_order == [r.value for r in records if r.key == key], f"{key!r} out of order"
    dead = [r for r in seen if r.key is not None and r.key.startswith(b"dead-")]
    assert len(dead) == 5 and all(r.headers == dict(HEADERS) for r in dead)
