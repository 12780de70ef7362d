"""A worker's duties besides consuming: expire held results, index queued task and message
vectors, probe dependencies for /healthz."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from processors.postgres import index_queue, ledger
from streams import metrics

if TYPE_CHECKING:
    from streams.worker import Worker

log = logging.getLogger(__name__)


async def _pause(stopping: asyncio.Event, seconds: float) -> bool:
    """Sleep unless stopping; True when the worker is stopping."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)
    return stopping.is_set()


async def expire_held_results(worker: Worker) -> int:
    """Dead-letter results whose task did not arrive within held_result_timeout_s; returns how many."""
    runtime = worker.runtime
    processor = runtime.pipeline.results
    async with runtime.pool.acquire() as conn:
        async with conn.transaction():
            expiry = await processor.applier.expire_held(
                conn, worker.settings.held_result_timeout_s, processor.config.dead_letter_topics
            )
            records = await ledger.add_to_outbox(conn, expiry.dead_letters)
        held = await conn.fetchval("SELECT count(*) FROM held_results")
    metrics.EVENTS_HELD.set(held)
    if expiry.applied:
        worker.stats.changed = True
    if records:
        metrics.HELD_EXPIRED.inc(len(records))
        for r in records:
            source = dict(r.headers).get("__connect.errors.topic", b"").decode()
            metrics.EVENTS_DEAD_LETTERED.labels(source).inc()
        if worker.publisher is not None:
            try:
                await worker.publisher.publish(records)
            except Exception as exc:
                log.warning("held-result dead letters left in the outbox for the sweep: %s", exc)
    return len(records)


async def held_results_loop(worker: Worker, stopping: asyncio.Event) -> None:
    while not await _pause(stopping, worker.settings.held_result_check_interval_s):
        try:
            while await expire_held_results(worker) and not stopping.is_set():
                pass  # more than one pass' worth expired at once
        except Exception as exc:
            log.warning("held results check failed: %s", exc)


_MERGES = (
    ("tasks", index_queue.merge, index_queue.queue_length),
    ("messages", index_queue.merge_messages, index_queue.message_queue_length),
)


async def index_merge_loop(worker: Worker, stopping: asyncio.Event, idle_s: float = 0.2) -> None:
    """Move queued task and message vectors into their HNSW indexes (sql/0006, sql/0008), a
    small transaction at a time, so a batch never waits for HNSW inserts. Drains while there
    is a queue, naps when there is none."""
    s = worker.settings
    gauge_at = 0.0
    while not stopping.is_set():
        busy = False
        for vectors, merge, length in _MERGES:
            try:
                async with worker.runtime.pool.acquire() as conn:
                    merged = await merge(conn, s.index_merge_batch)
                    # When drained, and at least every second while it is busy draining.
                    if merged < s.index_merge_batch or time.monotonic() - gauge_at > 1.0:
                        metrics.INDEX_QUEUE.labels(vectors).set(await length(conn))
                        gauge_at = time.monotonic()
                metrics.INDEX_MERGED.labels(vectors).inc(merged)
                busy = busy or merged >= s.index_merge_batch
            except Exception as exc:  # PostgreSQL away: the queue waits, searches still find it
                log.warning("%s index merge failed: %s", vectors, exc)
        if not busy and await _pause(stopping, idle_s):
            break


async def probe_loop(worker: Worker, stopping: asyncio.Event) -> None:
    """/healthz answers 503 while PostgreSQL or the broker does not, even with no traffic."""
    interval = worker.settings.health_probe_interval_s
    timeout = max(1.0, interval)

    async def ping_database() -> None:
        async with worker.runtime.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def ping_broker() -> None:
        if worker.consumer is not None:
            await worker.consumer.topics()

    while not stopping.is_set():
        await _probe(worker.health, "postgresql", ping_database, timeout)
        await _probe(worker.health, "broker", ping_broker, timeout)
        if await _pause(stopping, interval):
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
