"""Reprocess input topics through the pipeline (backfill). Effects are idempotent by event id,
so replaying any range leaves statistics exactly as a single pass left them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import TopicPartition

from streams.kafka import make_consumer, start_producer
from streams.runtime import Runtime
from streams.worker import Publisher, to_raw

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReplayReport:
    records: int = 0
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    seconds: float = 0.0
    per_topic: dict[str, int] = field(default_factory=dict)


async def replay(
    runtime: Runtime,
    topics: Sequence[str],
    *,
    since: datetime | None = None,
    idle_timeout_s: float = 2.0,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReplayReport:
    """Read `topics` from the beginning (or from `since`) to their current end."""
    s = runtime.settings
    bootstrap = runtime.endpoints.bootstrap
    consumer = make_consumer(s, bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    producer = await start_producer(s, bootstrap)
    publisher = Publisher(producer, runtime.pool)
    report = ReplayReport()
    started = time.perf_counter()
    try:
        partitions = [
            TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())
        ]
        if not partitions:
            return report
        consumer.assign(partitions)
        starts: dict[TopicPartition, int] = {}
        if since is not None:
            found = await consumer.offsets_for_times({tp: int(since.timestamp() * 1000) for tp in partitions})
            for tp in partitions:
                hit = found.get(tp)
                starts[tp] = hit.offset if hit is not None else 0
                consumer.seek(tp, starts[tp])
        else:
            await consumer.seek_to_beginning(*partitions)
            begins = await consumer.beginning_offsets(partitions)
            starts = dict(begins)
        ends = await consumer.end_offsets(partitions)
        total = sum(max(0, ends[tp] - starts.get(tp, 0)) for tp in partitions)
        if on_progress:
            on_progress(0, total)
        last_data = time.monotonic()
        positions = dict(starts)
        while True:
            fetched = await consumer.getmany(timeout_ms=200, max_records=s.batch_max_records)
            if not fetched:
                reached = all(positions.get(tp, 0) >= ends[tp] for tp in partitions)
                # End offsets can lag one batch behind on some brokers: wait for a quiet log too.
                if reached and time.monotonic() - last_data > idle_timeout_s / 4:
                    break
                if time.monotonic() - last_data > idle_timeout_s:
                    break
                continue
            last_data = time.monotonic()
            for tp, recs in sorted(fetched.items()):
                raw = [to_raw(r) for r in recs]
                result = await runtime.pipeline.handlers[tp.topic].handle(raw)
                await publisher.publish(result.outputs)
                positions[tp] = recs[-1].offset + 1
                report.records += len(recs)
                report.processed += result.processed
                report.duplicates += result.duplicates
                report.dead_lettered += result.dead_lettered
                report.per_topic[tp.topic] = report.per_topic.get(tp.topic, 0) + len(recs)
            if on_progress:
                on_progress(report.records, max(total, report.records))
    finally:
        report.seconds = time.perf_counter() - started
        await consumer.stop()
        await producer.stop()
    return report


async def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()
