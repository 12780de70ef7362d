"""Reprocess input topics through the pipeline (backfill). Effects are idempotent by event id,
so replaying any range leaves statistics exactly as a single pass left them."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from processors.errors import ConfigurationError
from streams.kafka import make_consumer, start_producer, to_raw
from streams.runtime import Runtime
from streams.settings import Settings
from streams.worker.publisher import Publisher

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ReplayReport:
    records: int = 0
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    # Records older than the replay window (TASKSAGE_REPLAY_WINDOW_DAYS), not re-applied: the
    # inbox keeps event ids only that long (not counted in `records`).
    outside_window: int = 0
    seconds: float = 0.0
    # Queued outcomes the learned layer learned when the replay ended (sql/0015): a backfill
    # leaves the layer caught up, whether or not a worker runs beside it.
    learned: int = 0
    per_topic: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Range:
    """Where each partition's replay starts and ends, and the records to leave out."""

    partitions: list[TopicPartition]
    starts: dict[TopicPartition, int]
    ends: dict[TopicPartition, int]
    # Partitions with no record at or after `since`: nothing of theirs is replayed. Brokers
    # whose end offsets can lag a batch behind may still hand older records: they are skipped.
    too_old: dict[TopicPartition, int]
    window_start_ms: int

    @property
    def total(self) -> int:
        return sum(max(0, self.ends[tp] - self.starts.get(tp, 0)) for tp in self.partitions)


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
        # The producer's partitions_for waits for each topic's metadata.
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(await producer.partitions_for(t))]
        if not partitions:
            return report
        consumer.assign(partitions)
        span = await _position(consumer, s, partitions, since)
        if on_progress:
            on_progress(0, span.total)
        await _read_to_the_end(consumer, runtime, publisher, span, report, idle_timeout_s, on_progress)
        report.learned = await runtime.pipeline.learned.catch_up(runtime.pool, s.learned_batch)
        if report.outside_window:
            log.warning(
                "replay skipped %d records older than the replay window (%g days): their event ids "
                "may have left the inbox, so they are not applied again",
                report.outside_window,
                s.replay_window_days,
            )
    finally:
        report.seconds = time.perf_counter() - started
        await consumer.stop()
        await producer.stop()
    return report


async def _position(
    consumer: AIOKafkaConsumer, s: Settings, partitions: list[TopicPartition], since: datetime | None
) -> _Range:
    """Seek every partition to where its replay starts: its beginning, or its first record at
    or after `since` (its end when there is none)."""
    ends = await consumer.end_offsets(partitions)
    window_start_ms = int((time.time() - s.replay_window_days * 86_400) * 1000)
    if since is None:
        await consumer.seek_to_beginning(*partitions)
        begins = dict(await consumer.beginning_offsets(partitions))
        return _Range(partitions, begins, ends, {}, window_start_ms)
    since_ms = int(since.timestamp() * 1000)
    if since_ms < window_start_ms:
        raise ConfigurationError(
            f"--since {since.isoformat()} is older than the replay window "
            f"({s.replay_window_days:g} days): the inbox no longer holds the ids of events "
            "applied before it, so a replay could apply them twice",
            hint="replay from a later time, or raise TASKSAGE_REPLAY_WINDOW_DAYS "
            "(it only covers events whose ids have not expired yet)",
        )
    starts: dict[TopicPartition, int] = {}
    too_old: dict[TopicPartition, int] = {}
    found = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
    for tp in partitions:
        hit = found.get(tp)
        # Apache Kafka answers None for "no such record"; Tansu answers offset 0 with
        # timestamp -1. Either way the replay of this partition starts at its end.
        if hit is None or hit.timestamp < since_ms:
            starts[tp] = ends[tp]
            too_old[tp] = since_ms
        else:
            starts[tp] = hit.offset
        consumer.seek(tp, starts[tp])
    return _Range(partitions, starts, ends, too_old, window_start_ms)


async def _read_to_the_end(
    consumer: AIOKafkaConsumer,
    runtime: Runtime,
    publisher: Publisher,
    span: _Range,
    report: ReplayReport,
    idle_timeout_s: float,
    on_progress: Callable[[int, int], None] | None,
) -> None:
    last_data = time.monotonic()
    positions = dict(span.starts)
    while True:
        fetched = await consumer.getmany(timeout_ms=200, max_records=runtime.settings.batch_max_records)
        if not fetched:
            reached = all(positions.get(tp, 0) >= span.ends[tp] for tp in span.partitions)
            # End offsets can lag one batch behind on some brokers: wait for a quiet log too.
            if reached and time.monotonic() - last_data > idle_timeout_s / 4:
                break
            if time.monotonic() - last_data > idle_timeout_s:
                break
            continue
        last_data = time.monotonic()
        for tp, batch in sorted(fetched.items()):
            positions[tp] = batch[-1].offset + 1
            await _apply(runtime, publisher, span, report, tp, batch)
        if on_progress:
            on_progress(report.records, max(span.total, report.records))


async def _apply(
    runtime: Runtime,
    publisher: Publisher,
    span: _Range,
    report: ReplayReport,
    tp: TopicPartition,
    batch: list[ConsumerRecord[bytes, bytes]],
) -> None:
    recs = [r for r in batch if r.timestamp >= span.too_old[tp]] if tp in span.too_old else batch
    # Older than the replay window: their ids may have left the inbox.
    kept = [r for r in recs if r.timestamp >= span.window_start_ms]
    report.outside_window += len(recs) - len(kept)
    if not kept:
        return
    result = await runtime.pipeline.handlers[tp.topic].handle([to_raw(r) for r in kept])
    await publisher.publish(result.outputs)
    report.records += len(kept)
    report.processed += result.processed
    report.duplicates += result.duplicates
    report.dead_lettered += result.dead_lettered
    report.per_topic[tp.topic] = report.per_topic.get(tp.topic, 0) + len(kept)


async def wait_for(predicate: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return predicate()
