"""The worker: consume input topics, run the pipeline, publish what it produced.

Consumer positions live in PostgreSQL, committed in the same transaction as the effects
(see processors/postgres/ledger.py); on every assignment the consumer seeks to them. Kafka
offsets are committed too, but only so that lag shows up in Kafka's own tools.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener

from processors.failures import Verdict
from processors.pipeline.attempts import POISON_PILL
from processors.pipeline.handler import Decoded, RetryAbandoned
from processors.postgres import ledger
from processors.records import BatchResult, RawRecord
from streams import metrics
from streams.kafka import ensure_topics, start_producer, warn_if_starved
from streams.runtime import Runtime
from streams.worker import upkeep
from streams.worker.crash_guard import CrashGuard
from streams.worker.log_integrity import AnchorWriter, LogIntegrity
from streams.worker.membership import Membership
from streams.worker.observe import BatchObserver, WorkerStats
from streams.worker.prefetch import Fetched, Upcoming, decode_into, plan_ahead
from streams.worker.publisher import Publisher

log = logging.getLogger(__name__)


class PositionListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.check: asyncio.Task[list[str]] | None = None

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.worker.hand_back(revoked)
        log.info("partitions revoked: %s", _describe(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        # In the background: a check that warns, never one that holds up the assignment.
        self.check = asyncio.create_task(
            warn_if_starved(self.worker.settings, self.worker.runtime.endpoints.bootstrap)
        )
        try:
            await self.worker.seek_to_stored_positions(assigned)
        except Exception:
            # The consumer would swallow this and read from Kafka's committed offsets instead:
            # stop, so that a restart seeks to the positions in PostgreSQL.
            log.exception("cannot seek to the positions stored in PostgreSQL; stopping the worker")
            self.worker.fail()


def _describe(tps: Sequence[TopicPartition]) -> str:
    return ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(tps)) or "none"


class Worker:
    def __init__(self, runtime: Runtime, health: metrics.Health | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.health = health or metrics.Health()
        self.consumer: AIOKafkaConsumer | None = None
        self.publisher: Publisher | None = None
        self.producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._failed = False
        self._background: list[asyncio.Task[None]] = []
        self._kafka_commit: asyncio.Task[None] | None = None
        self.observer = BatchObserver(runtime.pipeline, runtime.embedder)
        # Held while a batch is processed: a revocation waits for it, so the next owner of the
        # partitions starts from positions that include it.
        self._batch_lock = asyncio.Lock()
        # Partitions sought to their PostgreSQL positions. The consumer may fetch a newly assigned
        # partition from Kafka's offsets before our assignment callback has sought it; such
        # records are dropped (the seek re-reads them), so nothing is read from a wrong position.
        self._positioned: set[TopicPartition] = set()
        # Counts assignment changes: a batch decoded across one is dropped, not processed.
        self._assignments = 0
        self.integrity = LogIntegrity(self.settings, runtime.endpoints.bootstrap, runtime.pool, self.health)
        self.anchors = AnchorWriter(self.integrity)
        endpoints = runtime.endpoints
        self.membership = Membership(self.settings, endpoints.bootstrap, endpoints.dsn, runtime.pool)
        self.crash_guard = CrashGuard(self.settings, runtime.pool, self._wait_before_retry)
        for handler in runtime.pipeline.handlers.values():
            handler.on_retry = self._wait_before_retry
            handler.on_recovered = self.health.set_ok
            handler.systemic_after = self.settings.systemic_failure_after

    async def seek_to_stored_positions(self, assigned: Sequence[TopicPartition]) -> None:
        assert self.consumer is not None
        self._positioned.clear()
        self._assignments += 1
        async with self.runtime.pool.acquire() as conn:
            stored = await ledger.load_positions(
                conn, self.settings.consumer_group, [(tp.topic, tp.partition) for tp in assigned]
            )
        stored = await self.integrity.verify(stored)  # a broker that lost its logs (Tansu)
        await self.crash_guard.on_assigned(stored)
        fresh = [tp for tp in assigned if (tp.topic, tp.partition) not in stored]
        starts = await self.consumer.beginning_offsets(fresh) if fresh else {}
        # No await from the first seek until the partitions count as positioned: records the
        # consume loop drops must all have been fetched before our seek, which re-reads them.
        for tp in assigned:
            self.consumer.seek(tp, stored.get((tp.topic, tp.partition), starts.get(tp, 0)))
        self._positioned = set(assigned)
        log.info("partitions assigned: %s (positions from PostgreSQL: %d)", _describe(assigned), len(stored))
        await self.membership.record(self.consumer)

    async def hand_back(self, revoked: Sequence[TopicPartition]) -> None:
        """Let the in-flight batch commit before the group moves partitions (bounded: the group
        waits for us). Whatever is not committed by then is read again by the next owner."""
        self._positioned.difference_update(revoked)
        self._assignments += 1
        self._discard_plans_ahead()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.membership.timing.session_timeout_ms / 2000):
                await self._batch_lock.acquire()
                self._batch_lock.release()

    async def _wait_before_retry(self, verdict: Verdict, attempt: int, delay: float) -> None:
        """Pause fetching while a dependency is down, so nothing is dropped and nothing piles up."""
        self.health.set_failing(f"{verdict.error_class}: {verdict.message}")
        metrics.RETRIES.labels("*", verdict.error_class).inc()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), delay)
        if self._stopping.is_set():
            raise RetryAbandoned(f"stopping while waiting on {verdict.error_class}")

    def stop(self) -> None:
        self._stopping.set()

    def fail(self) -> None:
        self._failed = True
        self._stopping.set()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        s = self.settings
        endpoints = self.runtime.endpoints
        await ensure_topics(s, endpoints.bootstrap)
        self.producer = await start_producer(s, endpoints.bootstrap)
        self.publisher = Publisher(self.producer, self.runtime.pool)
        self.consumer = await self.membership.consumer(list(s.input_topics.values()), PositionListener(self))
        await self.consumer.start()  # assignments may arrive before it returns
        try:
            swept = await self.publisher.sweep(
                older_than_s=0.0 if endpoints.embedded else s.outbox_sweep_after_s
            )
            if swept:
                log.info("published %d records left in the outbox by an earlier run", swept)
            self._background = upkeep.start(
                self.runtime, self.publisher, self.producer, self.consumer, self.health, self._stopping
            )
            self.health.set_ok("worker")
            if ready is not None:
                ready.set()
            await self._consume_loop()
            if not self._failed:
                await self.crash_guard.forget(self.consumer.assignment())
            if self._failed:
                raise RuntimeError("the worker stopped after a failed partition assignment")
        except Exception:
            log.exception("worker failed")
            raise
        finally:
            await self._shutdown()

    @property
    def stats(self) -> WorkerStats:
        return self.observer.stats

    async def _consume_loop(self) -> None:
        """While a batch is processed, fetch and decode the records that arrive meanwhile: they
        are the next batch, already decoded when it starts. Decoding is Python work and a
        batch's transaction mostly waits on PostgreSQL, so the two overlap. One batch is
        processed at a time, in fetch order; records decoded across an assignment change are
        dropped (the seek to the stored positions reads them again)."""
        assert self.consumer is not None
        limit = self.settings.batch_max_records
        running: asyncio.Task[None] | None = None
        running_batch: Upcoming | None = None
        upcoming: Upcoming | None = None
        try:
            while not self._stopping.is_set():
                busy = running is not None and not running.done()
                size = upcoming.size if upcoming is not None else 0
                if size < limit:
                    # While a batch runs, poll briefly, so the next one starts when it ends.
                    fetched = await self.consumer.getmany(
                        timeout_ms=5 if busy else 200, max_records=limit - size
                    )
                    epoch = self._assignments
                    fetched = {tp: records for tp, records in fetched.items() if tp in self._positioned}
                    if fetched:
                        if upcoming is None or upcoming.epoch != epoch:
                            upcoming = Upcoming(epoch)
                        undecoded = await self.crash_guard.before_decode(upcoming, fetched)
                        await decode_into(upcoming, fetched, self.runtime.pipeline.handlers, undecoded)
                    if upcoming is not None and upcoming.size >= limit and running is not None:
                        self._plan_ahead(upcoming, running_batch)
                    if (
                        running is not None
                        and not running.done()
                        and (upcoming is None or upcoming.size < limit)
                    ):
                        continue
                if running is not None:
                    await running
                    running = None
                if self._stopping.is_set():
                    break  # fetched but not started: the next owner reads these again
                if upcoming is None or not upcoming.size:
                    continue
                if upcoming.epoch != self._assignments:
                    upcoming = None  # positions were sought again meanwhile: these come back
                    continue
                running = asyncio.create_task(self._run_batch(upcoming), name="batch")
                running_batch, upcoming = upcoming, None
                await asyncio.sleep(0)  # let it send its first statement
            if running is not None:
                await running
        except RetryAbandoned as exc:
            log.info("stopping: in-flight batch handed back uncommitted (%s)", exc)
        finally:
            if running is not None and not running.done():
                with contextlib.suppress(RetryAbandoned):
                    await running

    def _plan_ahead(self, upcoming: Upcoming, running: Upcoming | None) -> None:
        if (
            self.settings.plan_ahead
            and not upcoming.planned_ahead
            and not upcoming.undecoded
            and upcoming.epoch == self._assignments
        ):
            plan_ahead(upcoming, running, self.runtime.pipeline.handlers)

    async def _run_batch(self, batch: Upcoming) -> None:
        async def whole() -> None:
            for part in batch.parts.values():
                await self.process(part.topic, part.records, part.decoded)

        async with self._batch_lock:
            await self.crash_guard.run(batch, whole, self.process, self._positioned)
        assert self.consumer is not None
        self.observer.lag(self.consumer, batch.fetched)
        # Kafka offsets are for lag tools only: never wait for them, keep one commit in flight.
        if self._kafka_commit is None or self._kafka_commit.done():
            self._kafka_commit = asyncio.create_task(_commit_to_kafka(self.consumer, batch.fetched))

    async def process(
        self,
        topic: str,
        records: list[RawRecord],
        decoded: Decoded | None = None,
        poison: str | None = None,
    ) -> BatchResult:
        handler = self.runtime.pipeline.handlers[topic]
        metrics.EVENTS_IN.labels(topic).inc(len(records))
        started = time.perf_counter()
        if poison is not None:
            result = await handler.dead_letter(records[0], POISON_PILL, poison)
        else:
            result = await handler.handle(records, decoded=decoded)
        assert self.publisher is not None
        self.anchors.remember_later(records)
        try:
            await self.publisher.submit(result.outputs)
        except Exception as exc:
            # Committed and in the outbox: the sweep publishes them once the broker is back.
            log.warning("publishing %d records failed, left in the outbox: %s", len(result.outputs), exc)
        self.observer.batch_done(topic, records, result, started)
        log.debug(
            "batch topic=%s partition=%d offset=%d..%d processed=%d duplicates=%d dead_lettered=%d",
            topic,
            records[0].partition,
            records[0].offset,
            records[-1].offset,
            result.processed,
            result.duplicates,
            result.dead_lettered,
        )
        return result

    def _discard_plans_ahead(self) -> None:
        for handler in self.runtime.pipeline.handlers.values():
            handler.discard_ahead()

    async def _shutdown(self) -> None:
        self._stopping.set()
        self._discard_plans_ahead()
        for task in self._background:
            task.cancel()
        for task in self._background:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        # Leaving the group hands our partitions over at once. Bounded, like everything after
        # a stop, so that the whole shutdown fits in shutdown_timeout_s.
        budget = max(0.25, min(5.0, self.settings.shutdown_timeout_s / 8))
        pending = (self._kafka_commit, self.anchors.writing)
        await _close_bounded(budget, self.publisher, pending, self.consumer, self.producer)
        await self.membership.release(left_group=self.settings.group_instance_id is None)
        log.info("worker stopped")


async def _commit_to_kafka(consumer: AIOKafkaConsumer, fetched: Fetched) -> None:
    offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}
    try:
        await consumer.commit(offsets)
    except Exception as exc:
        log.debug("kafka offset commit skipped: %s", exc)


async def _close_bounded(
    budget: float,
    publisher: Publisher | None,
    pending: Sequence[asyncio.Task[None] | None],
    consumer: AIOKafkaConsumer | None,
    producer: AIOKafkaProducer | None,
) -> None:
    """Wait for acknowledgements and background writes, then close the clients, each step
    within `budget` seconds."""
    if publisher is not None:
        await publisher.drain(budget)
    for task in pending:
        if task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, budget)
    if consumer is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(consumer.stop(), budget)
    if producer is not None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(producer.stop(), budget)
