"""A worker's duties besides consuming: expire held results, index queued task and message
vectors, teach the learned layer its queued outcomes, probe dependencies for /healthz, publish
schedule snapshots, sweep the outbox.

Each loop takes the collaborators it uses (pool, processor, publisher, health), not the worker,
so that it can be read and tested on its own and the worker module is the only one that wires
them together."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from processors.contracts import encode
from processors.failures import Backoff
from processors.pipeline.learned_updates import LearnedLayer
from processors.pipeline.results import ExecutionResultProcessor
from processors.pipeline.snapshots import SnapshotBuilder
from processors.postgres import index_queue, learned_models, ledger, overview
from processors.postgres.pool import Pool, ping
from streams import metrics
from streams.runtime import Runtime
from streams.search_runtime import refresh_coverage
from streams.worker.bookkeeping import retention_loop
from streams.worker.insights import insights_loop
from streams.worker.periodic import FailureStreak, every, pause
from streams.worker.publisher import Publisher

log = logging.getLogger(__name__)


async def expire_held_results(
    pool: Pool, processor: ExecutionResultProcessor, timeout_s: float, publisher: Publisher | None
) -> int:
    """Dead-letter results whose task did not arrive within `timeout_s`; returns how many."""
    async with pool.acquire() as conn:
        async with conn.transaction():
            expiry = await processor.applier.expire_held(conn, timeout_s, processor.config.dead_letter_topics)
            records = await ledger.add_to_outbox(conn, expiry.dead_letters)
        held = await overview.row_count(conn, "held_results")
    metrics.EVENTS_HELD.set(held)
    if records:
        metrics.HELD_EXPIRED.inc(len(records))
        for r in records:
            source = dict(r.headers).get("__connect.errors.topic", b"").decode()
            metrics.EVENTS_DEAD_LETTERED.labels(source).inc()
        if publisher is not None:
            try:
                await publisher.publish(records)
            except Exception as exc:
                log.warning("held-result dead letters left in the outbox for the sweep: %s", exc)
    return len(records)


async def held_results_loop(
    pool: Pool,
    processor: ExecutionResultProcessor,
    publisher: Publisher,
    stopping: asyncio.Event,
    backoff: Backoff,
    *,
    timeout_s: float,
    interval_s: float,
) -> None:
    async def expire_all() -> None:
        while await expire_held_results(pool, processor, timeout_s, publisher) and not stopping.is_set():
            pass  # more than one pass' worth expired at once

    await every("held results check", expire_all, interval_s, stopping, backoff, first_at_start=False)


_MERGES = (
    ("tasks", index_queue.merge, index_queue.queue_length),
    ("messages", index_queue.merge_messages, index_queue.message_queue_length),
)


async def index_merge_loop(
    pool: Pool, batch: int, stopping: asyncio.Event, backoff: Backoff, idle_s: float = 0.2
) -> None:
    """Move queued task and message vectors into their HNSW indexes (sql/0006, sql/0008), a
    small transaction at a time, so a batch never waits for HNSW inserts. Drains while there
    is a queue, naps when there is none, backs off while merging fails."""
    gauge_at = 0.0
    streaks = {vectors: FailureStreak(f"{vectors} index merge", backoff) for vectors, _, _ in _MERGES}
    while not stopping.is_set():
        busy = False
        for vectors, merge, length in _MERGES:
            if not streaks[vectors].ready():
                continue  # failing: its wait is not over (the other index still drains meanwhile)
            try:
                async with pool.acquire() as conn:
                    merged = await merge(conn, batch)
                    # When drained, and at least every second while it is busy draining.
                    if merged < batch or time.monotonic() - gauge_at > 1.0:
                        metrics.INDEX_QUEUE.labels(vectors).set(await length(conn))
                        gauge_at = time.monotonic()
                metrics.INDEX_MERGED.labels(vectors).inc(merged)
                busy = busy or merged >= batch
                streaks[vectors].succeeded()
            except Exception as exc:  # PostgreSQL away: the queue waits, searches still find it
                streaks[vectors].failed(exc)
        if not busy and await pause(stopping, min(streak.nap_s(idle_s) for streak in streaks.values())):
            break


async def learning_loop(
    pool: Pool,
    layer: LearnedLayer,
    batch: int,
    stopping: asyncio.Event,
    backoff: Backoff,
    idle_s: float = 0.2,
) -> None:
    """Teach the learned layer the outcomes the execution-result stream queued (sql/0015), up to
    `batch` per transaction: drains while there is a queue, naps when there is none or when
    another worker's learner is mid-pass (it takes the queue; learners serialise on the layer's
    lock, so more of them waiting would only hold connections), backs off while learning fails.
    Under load the queue grows between passes, so a pass learns more outcomes for its one model
    write."""
    gauge_at = 0.0
    streak = FailureStreak("learning from queued outcomes", backoff)
    while layer.enabled and not stopping.is_set():
        learned = 0
        try:
            learned = await layer.learn(pool, batch)
            metrics.LEARNED_OUTCOMES.inc(learned)
            if time.monotonic() - gauge_at > 1.0:  # at most every second, busy or idle
                async with pool.acquire() as conn:
                    metrics.LEARNING_QUEUE.set(await learned_models.queue_length(conn, layer.embedding_model))
                gauge_at = time.monotonic()
            streak.succeeded()
        except Exception as exc:  # PostgreSQL away: the outcomes wait in the queue
            streak.failed(exc)
        if (streak.count or learned < batch) and await pause(stopping, streak.nap_s(idle_s)):
            break


async def probe_loop(
    pool: Pool, consumer: AIOKafkaConsumer, health: metrics.Health, stopping: asyncio.Event, interval: float
) -> None:
    """/healthz answers 503 while PostgreSQL or the broker does not, even with no traffic."""
    timeout = max(1.0, interval)

    async def ping_database() -> None:
        async with pool.acquire() as conn:
            await ping(conn)

    async def ping_broker() -> None:
        await consumer.topics()

    while not stopping.is_set():
        await _probe(health, "postgresql", ping_database, timeout)
        await _probe(health, "broker", ping_broker, timeout)
        if await pause(stopping, interval):
            break


async def _probe(
    health: metrics.Health, name: str, check: Callable[[], Awaitable[None]], within_s: float
) -> None:
    try:
        await asyncio.wait_for(check(), within_s)
    except Exception as exc:
        detail = str(exc) or "no answer"
        health.set_failing(f"{type(exc).__name__}: {detail}", component=name)
        metrics.DEPENDENCY_UP.labels(name).set(0)
    else:
        health.set_ok(name)
        metrics.DEPENDENCY_UP.labels(name).set(1)


async def snapshot_loop(
    builder: SnapshotBuilder,
    producer: AIOKafkaProducer,
    topic: str,
    interval_s: float,
    stopping: asyncio.Event,
    backoff: Backoff,
) -> None:
    """Deadlines move even when no event arrives, so re-rank every tick; the builder only
    returns a snapshot when the order actually changed."""

    async def publish_if_changed() -> None:
        snapshot = await builder.build_if_changed()
        if snapshot is not None:
            await producer.send_and_wait(topic, encode(snapshot), key=b"all")
            metrics.EVENTS_OUT.labels(topic).inc()

    await every("schedule snapshot", publish_if_changed, interval_s, stopping, backoff, first_at_start=False)


async def outbox_sweep_loop(
    publisher: Publisher, older_than_s: float, stopping: asyncio.Event, backoff: Backoff
) -> None:
    """Publish outbox rows a failed send left behind (consumers dedupe by event_id)."""

    async def sweep() -> None:
        await publisher.sweep(older_than_s=older_than_s)

    interval = min(10.0, max(0.5, older_than_s / 3))
    await every("outbox sweep", sweep, interval, stopping, backoff, first_at_start=False)


def start(
    runtime: Runtime,
    publisher: Publisher,
    producer: AIOKafkaProducer,
    consumer: AIOKafkaConsumer,
    health: metrics.Health,
    stopping: asyncio.Event,
) -> list[asyncio.Task[None]]:
    """Start every upkeep loop of a worker; each ends when `stopping` is set."""
    s, pool = runtime.settings, runtime.pool
    backoff = Backoff(s.retry_initial_s, s.retry_max_s)
    loops = {
        "snapshots": snapshot_loop(
            runtime.pipeline.snapshots,
            producer,
            s.topic_schedule_snapshots,
            s.snapshot_interval_s,
            stopping,
            backoff,
        ),
        "outbox-sweep": outbox_sweep_loop(publisher, s.outbox_sweep_after_s, stopping, backoff),
        "coverage": every(
            "embedding coverage refresh",
            lambda: refresh_coverage(pool),
            s.coverage_interval_s,
            stopping,
            backoff,
            first_at_start=True,
        ),
        "held-results": held_results_loop(
            pool,
            runtime.pipeline.results,
            publisher,
            stopping,
            backoff,
            timeout_s=s.held_result_timeout_s,
            interval_s=s.held_result_check_interval_s,
        ),
        "index-merge": index_merge_loop(pool, s.index_merge_batch, stopping, backoff),
        "learning": learning_loop(pool, runtime.pipeline.learned, s.learned_batch, stopping, backoff),
        "health-probes": probe_loop(pool, consumer, health, stopping, s.health_probe_interval_s),
        "insights": insights_loop(runtime, producer, stopping, backoff),
        "retention": retention_loop(s, pool, stopping, backoff),
    }
    return [asyncio.create_task(loop, name=name) for name, loop in loops.items()]
