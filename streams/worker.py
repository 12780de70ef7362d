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
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.producer.message_accumulator import BatchBuilder

from processors.contracts import encode
from processors.failures import Verdict
from processors.pipeline.base import BatchResult, OutgoingRecord, RawRecord
from processors.pipeline.handler import RetryAbandoned
from processors.postgres import ledger
from processors.postgres.pool import Pool
from streams import metrics, upkeep
from streams.bookkeeping import retention_loop
from streams.kafka import ensure_topics, make_consumer, start_producer, warn_if_starved
from streams.log_integrity import LogIntegrity
from streams.runtime import Runtime
from streams.search_runtime import coverage_loop

log = logging.getLogger(__name__)


def to_raw(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(
        record.topic, record.partition, record.offset, record.key, record.value, record.timestamp or 0
    )


class Publisher:
    """Sends records and then removes them from the outbox; a crash in between re-sends them."""

    def __init__(self, producer: AIOKafkaProducer, pool: Pool) -> None:
        self.producer = producer
        self.pool = pool
        self._partitioner = DefaultPartitioner()
        # Bounded: when acknowledgements fall behind, `submit` waits instead of piling up.
        self._sent: asyncio.Queue[tuple[list[OutgoingRecord], list[asyncio.Future[Any]]]] = asyncio.Queue(64)
        self._acks: asyncio.Task[None] | None = None

    async def publish(self, records: Sequence[OutgoingRecord]) -> None:
        if not records:
            return
        cleanup = await _settle(records, await self._send(records))
        if cleanup:
            async with self.pool.acquire() as conn:
                await ledger.clean_outbox(conn, cleanup)

    async def _send(self, records: Sequence[OutgoingRecord]) -> list[asyncio.Future[Any]]:
        """Hand records to the producer as one batch per topic partition, in order; returns each
        record's batch future. One send() per record cost the client 11.4 us a record, a batch
        6.7 (issue 6). Partitions are chosen by the producer's own default partitioner (murmur2
        of the key, as Java clients do); records without a key share one partition per call."""
        open_batches: dict[tuple[str, int], tuple[BatchBuilder, list[int]]] = {}
        partitions: dict[str, list[int]] = {}
        keyless: dict[str, int] = {}
        sent: dict[int, asyncio.Future[Any]] = {}  # record index -> its batch's future
        for n, r in enumerate(records):
            parts = partitions.get(r.topic)
            if parts is None:
                parts = partitions[r.topic] = sorted(await self.producer.partitions_for(r.topic))
            if r.key is None:
                slot = (r.topic, keyless.setdefault(r.topic, self.partition_of(None, parts)))
            else:
                slot = (r.topic, self.partition_of(r.key, parts))
            headers = list(r.headers)
            entry = open_batches.get(slot)
            if (
                entry is None
                or entry[0].append(timestamp=None, key=r.key, value=r.value, headers=headers) is None
            ):
                if entry is not None:  # full: send it, then start the next one
                    await self._send_batch(slot, *open_batches.pop(slot), sent)
                entry = (self.producer.create_batch(), [])
                if entry[0].append(timestamp=None, key=r.key, value=r.value, headers=headers) is None:
                    # Bigger than a whole batch: send() raises the producer's own size error.
                    sent[n] = await self.producer.send(r.topic, r.value, key=r.key, headers=headers)
                    continue
                open_batches[slot] = entry
            entry[1].append(n)
        for slot, (batch, members) in open_batches.items():
            await self._send_batch(slot, batch, members, sent)
        return [sent[n] for n in range(len(records))]

    def partition_of(self, key: bytes | None, partitions: list[int]) -> int:
        """Where a record goes: murmur2 of the key, as the producer (and Java clients) would."""
        return int(self._partitioner(key, partitions, partitions))

    async def _send_batch(
        self,
        slot: tuple[str, int],
        batch: BatchBuilder,
        members: list[int],
        sent: dict[int, asyncio.Future[Any]],
    ) -> None:
        future = await self.producer.send_batch(batch, slot[0], partition=slot[1])
        for n in members:
            sent[n] = future

    async def sweep(self, older_than_s: float) -> int:
        async with self.pool.acquire() as conn:
            left = await ledger.pending_outbox(conn, older_than_s)
        await self.publish(left)
        return len(left)

    async def submit(self, records: Sequence[OutgoingRecord]) -> None:
        """Hand records to the producer now, in order; acknowledgements and the outbox delete
        follow in the background, so the next batch's database work overlaps this batch's
        produce round trip (issue 6). Same guarantee as `publish`: a record leaves the outbox
        only once the broker has it, and a failed send stays there for the sweep."""
        if not records:
            return
        futures = await self._send(records)
        if self._acks is None:
            self._acks = asyncio.create_task(self._acknowledge(), name="outbox-acks")
        await self._sent.put((list(records), futures))

    async def _acknowledge(self) -> None:
        while True:
            records, futures = await self._sent.get()
            done = [(records, futures)]
            while not self._sent.empty():  # coalesce: one outbox delete for every batch acked
                done.append(self._sent.get_nowait())
            records = [r for batch, _ in done for r in batch]
            futures = [f for _, sent in done for f in sent]
            cleanup = await _settle(records, futures)
            try:
                if cleanup:
                    async with self.pool.acquire() as conn:
                        await ledger.clean_outbox(conn, cleanup)
            except Exception as exc:  # the sweep publishes them again; consumers dedupe by event_id
                log.warning("removing %d published outbox rows failed: %s", len(cleanup.delete), exc)
            finally:
                for _ in done:
                    self._sent.task_done()

    async def drain(self, timeout_s: float) -> None:
        """Wait for submitted records to be acknowledged (shutdown)."""
        if self._acks is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._sent.join(), timeout_s)
        self._acks.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._acks
        self._acks = None


# Records decoded between two yields to the event loop while a batch is in flight.
DECODE_SLICE = 100


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One topic's records of the next batch, decoded ahead of processing."""

    topic: str
    records: list[RawRecord]
    decoded: tuple[list[Any], list[Any]]


@dataclass(slots=True)
class _Upcoming:
    """The next batch, filled while the current one runs; `epoch`: the assignment it was read in."""

    epoch: int
    fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]] = field(default_factory=dict)
    parts: dict[str, _Prepared] = field(default_factory=dict)
    size: int = 0
    planned_ahead: bool = False


async def _settle(
    records: Sequence[OutgoingRecord], futures: Sequence[asyncio.Future[Any]]
) -> ledger.OutboxCleanup:
    """Wait for the broker's answers to sent records; returns what to do with their outbox rows.
    One record the broker refuses must not keep the others in the outbox: it alone stays there
    for the sweep. Counted per topic, not per record: a label lookup costs more than the inc."""
    outcomes = await asyncio.gather(*futures, return_exceptions=True)
    published: list[OutgoingRecord] = []
    refused: list[OutgoingRecord] = []
    errors: list[BaseException] = []
    per_topic: Counter[str] = Counter()
    for r, outcome in zip(records, outcomes, strict=True):
        if isinstance(outcome, BaseException):
            refused.append(r)
            errors.append(outcome)
            continue
        published.append(r)
        per_topic[r.topic] += 1
    for topic, n in per_topic.items():
        metrics.EVENTS_OUT.labels(topic).inc(n)
    if errors:
        log.warning("publishing %d records failed, left in the outbox: %s", len(errors), errors[0])
    return ledger.outbox_cleanup(published, refused)


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


@dataclass(slots=True)
class WorkerStats:
    processed: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    duplicates: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    dead_lettered: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    published: int = 0
    changed: bool = False


class Worker:
    def __init__(self, runtime: Runtime, health: metrics.Health | None = None) -> None:
        self.runtime = runtime
        self.settings = runtime.settings
        self.health = health or metrics.Health()
        self.stats = WorkerStats()
        self.consumer: AIOKafkaConsumer | None = None
        self.publisher: Publisher | None = None
        self.producer: AIOKafkaProducer | None = None
        self._stopping = asyncio.Event()
        self._failed = False
        self._background: list[asyncio.Task[None]] = []
        self._kafka_commit: asyncio.Task[None] | None = None
        self._anchors_due: dict[tuple[str, int], RawRecord] = {}
        self._anchor_writer: asyncio.Task[None] | None = None
        self._embedding_seen: tuple[int, int, int, float] = (0, 0, 0, 0.0)
        self._plans_ahead_seen = (0, 0)
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
        fresh = [tp for tp in assigned if (tp.topic, tp.partition) not in stored]
        starts = await self.consumer.beginning_offsets(fresh) if fresh else {}
        # No await from the first seek until the partitions count as positioned: records the
        # consume loop drops must all have been fetched before our seek, which re-reads them.
        for tp in assigned:
            self.consumer.seek(tp, stored.get((tp.topic, tp.partition), starts.get(tp, 0)))
        self._positioned = set(assigned)
        log.info("partitions assigned: %s (positions from PostgreSQL: %d)", _describe(assigned), len(stored))

    async def hand_back(self, revoked: Sequence[TopicPartition]) -> None:
        """Let the in-flight batch commit before the group moves partitions (bounded: the group
        waits for us). Whatever is not committed by then is read again by the next owner."""
        self._positioned.difference_update(revoked)
        self._assignments += 1
        self._discard_plans_ahead()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.settings.session_timeout_ms / 2000):
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
        self.consumer = make_consumer(s, endpoints.bootstrap, group_id=s.consumer_group)
        self.consumer.subscribe(list(s.input_topics.values()), listener=PositionListener(self))
        await self.consumer.start()
        try:
            swept = await self.publisher.sweep(
                older_than_s=0.0 if endpoints.embedded else s.outbox_sweep_after_s
            )
            if swept:
                log.info("published %d records left in the outbox by an earlier run", swept)
            self._background = [
                asyncio.create_task(self._snapshot_loop(), name="snapshots"),
                asyncio.create_task(self._sweep_loop(), name="outbox-sweep"),
                asyncio.create_task(
                    coverage_loop(self.runtime.pool, self._stopping, s.coverage_interval_s), name="coverage"
                ),
                asyncio.create_task(upkeep.held_results_loop(self, self._stopping), name="held-results"),
                asyncio.create_task(upkeep.index_merge_loop(self, self._stopping), name="index-merge"),
                asyncio.create_task(upkeep.probe_loop(self, self._stopping), name="health-probes"),
                asyncio.create_task(retention_loop(s, self.runtime.pool, self._stopping), name="retention"),
            ]
            self.health.set_ok("worker")
            if ready is not None:
                ready.set()
            await self._consume_loop()
            if self._failed:
                raise RuntimeError("the worker stopped after a failed partition assignment")
        except Exception:
            log.exception("worker failed")
            raise
        finally:
            await self._shutdown()

    async def _consume_loop(self) -> None:
        """While a batch is processed, fetch and decode the records that arrive meanwhile: they
        are the next batch, already decoded when it starts. Decoding is Python work and a
        batch's transaction mostly waits on PostgreSQL, so the two overlap. One batch is
        processed at a time, in fetch order; records decoded across an assignment change are
        dropped (the seek to the stored positions reads them again)."""
        assert self.consumer is not None
        limit = self.settings.batch_max_records
        running: asyncio.Task[None] | None = None
        running_batch: _Upcoming | None = None
        upcoming: _Upcoming | None = None
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
                            upcoming = _Upcoming(epoch)
                        await self._decode_into(upcoming, fetched)
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

    def _plan_ahead(self, upcoming: _Upcoming, running: _Upcoming | None) -> None:
        """A full next batch (it takes no more records) may start planning while the running
        one commits, unless a batch that applies outcomes runs before it: a plan made ahead
        must read the history its batch would read (processors/pipeline/tasks.py)."""
        if not self.settings.plan_ahead or upcoming.planned_ahead or upcoming.epoch != self._assignments:
            return
        upcoming.planned_ahead = True
        handlers = self.runtime.pipeline.handlers
        if running is not None and any(handlers[p.topic].changes_history for p in running.parts.values()):
            return
        for part in upcoming.parts.values():
            handler = handlers[part.topic]
            handler.prepare_ahead(part.decoded[0])
            if handler.changes_history:
                return  # later parts run after outcomes are applied

    async def _decode_into(
        self, upcoming: _Upcoming, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """Decode fetched records onto the next batch, yielding to the event loop between slices
        so the batch in flight can send its next statement as soon as PostgreSQL answers."""
        for tp, records in sorted(fetched.items()):
            upcoming.fetched.setdefault(tp, []).extend(records)
            part = upcoming.parts.get(tp.topic)
            if part is None:
                part = upcoming.parts[tp.topic] = _Prepared(tp.topic, [], ([], []))
            handler = self.runtime.pipeline.handlers[tp.topic]
            raw = [to_raw(r) for r in records]
            for start in range(0, len(raw), DECODE_SLICE):
                piece = raw[start : start + DECODE_SLICE]
                items, rejected = handler.decode(piece)
                part.records.extend(piece)
                part.decoded[0].extend(items)
                part.decoded[1].extend(rejected)
                await asyncio.sleep(0)
            upcoming.size += len(records)

    async def _run_batch(self, batch: _Upcoming) -> None:
        async with self._batch_lock:
            for part in batch.parts.values():
                await self.process(part.topic, part.records, part.decoded)
        self._observe_lag(batch.fetched)
        # Kafka offsets are for lag tools only: never wait for them, keep one commit in flight.
        if self._kafka_commit is None or self._kafka_commit.done():
            self._kafka_commit = asyncio.create_task(self._commit_to_kafka(batch.fetched))

    def _observe_lag(self, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> None:
        """Records behind the log end per partition, from the high watermark of the last fetch."""
        assert self.consumer is not None
        for tp, records in fetched.items():
            highwater = self.consumer.highwater(tp)
            if highwater is not None and records:
                metrics.CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(
                    max(0, highwater - records[-1].offset - 1)
                )

    async def process(
        self,
        topic: str,
        records: list[RawRecord],
        decoded: tuple[list[Any], list[Any]] | None = None,
    ) -> BatchResult:
        handler = self.runtime.pipeline.handlers[topic]
        metrics.EVENTS_IN.labels(topic).inc(len(records))
        started = time.perf_counter()
        result = await handler.handle(records, decoded=decoded)
        assert self.publisher is not None
        self._remember_later(records)
        try:
            await self.publisher.submit(result.outputs)
        except Exception as exc:
            # Committed and in the outbox: the sweep publishes them once the broker is back.
            log.warning("publishing %d records failed, left in the outbox: %s", len(result.outputs), exc)
        now_ms = time.time() * 1000
        latency = metrics.EVENT_LATENCY.labels(topic)  # one label lookup per batch, not per record
        for r in records:
            if r.timestamp_ms:
                latency.observe(max(0.0, now_ms - r.timestamp_ms) / 1000)
        metrics.BATCH_SECONDS.labels(topic).observe(time.perf_counter() - started)
        for stage, seconds in result.stage_seconds.items():
            metrics.STAGE_SECONDS.labels(topic, stage).observe(seconds)
        self._observe_embedding()
        self._observe_plans_ahead()
        metrics.EVENTS_PROCESSED.labels(topic).inc(result.processed)
        metrics.EVENTS_DUPLICATE.labels(topic).inc(result.duplicates)
        metrics.EVENTS_DEAD_LETTERED.labels(topic).inc(result.dead_lettered)
        self.stats.processed[topic] += result.processed
        self.stats.duplicates[topic] += result.duplicates
        self.stats.dead_lettered[topic] += result.dead_lettered
        self.stats.published += len(result.outputs)
        if result.processed:
            self.stats.changed = True
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

    def _remember_later(self, records: Sequence[RawRecord]) -> None:
        """Anchor each partition at its last committed record, in the background: anchors are
        hints for detecting a broker that lost its log, and an older one names a record of the
        log as well, so the next batch need not wait for this write."""
        for r in records:
            self._anchors_due[(r.topic, r.partition)] = r
        if self._anchor_writer is None or self._anchor_writer.done():
            self._anchor_writer = asyncio.create_task(self._write_anchors(), name="partition-anchors")

    async def _write_anchors(self) -> None:
        while self._anchors_due:
            due, self._anchors_due = list(self._anchors_due.values()), {}
            try:
                await self.integrity.remember(due)
            except Exception as exc:  # an older anchor still names a record of this log
                log.debug("partition anchors not saved: %s", exc)

    def _observe_embedding(self) -> None:
        """Export the embedding counters the processors keep (they hold no metrics library)."""
        pipeline = self.runtime.pipeline
        model = self.runtime.embedder.model_name
        texts = pipeline.tasks.embedding_stats.texts + pipeline.messages.embedding_stats.texts
        reused = pipeline.tasks.embedding_stats.reused + pipeline.messages.embedding_stats.reused
        tokens = pipeline.tasks.embedding_stats.tokens + pipeline.messages.embedding_stats.tokens
        seconds = pipeline.tasks.embedding_stats.seconds + pipeline.messages.embedding_stats.seconds
        last = self._embedding_seen
        metrics.EMBED_TEXTS.labels(model).inc(texts - last[0])
        metrics.EMBED_REUSED.labels(model).inc(reused - last[1])
        metrics.EMBED_TOKENS.labels(model).inc(tokens - last[2])
        if texts > last[0]:
            metrics.EMBED_SECONDS.labels(model).observe(seconds - last[3])
        self._embedding_seen = (texts, reused, tokens, seconds)

    def _observe_plans_ahead(self) -> None:
        stats = self.runtime.pipeline.tasks.plans_ahead
        now = (stats.used, stats.decided_again)
        if now == self._plans_ahead_seen:
            return  # most batches: no label lookups
        used, again = self._plans_ahead_seen
        metrics.TASK_PLANS_AHEAD.labels("used").inc(stats.used - used)
        metrics.TASK_PLANS_AHEAD.labels("decided_again").inc(stats.decided_again - again)
        self._plans_ahead_seen = now

    async def _commit_to_kafka(
        self, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        assert self.consumer is not None
        offsets = {tp: records[-1].offset + 1 for tp, records in fetched.items() if records}
        try:
            await self.consumer.commit(offsets)
        except Exception as exc:
            log.debug("kafka offset commit skipped: %s", exc)

    async def _snapshot_loop(self) -> None:
        builder = self.runtime.pipeline.snapshots
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.snapshot_interval_s)
            # Deadlines move even when no event arrives, so re-rank every tick; the builder
            # only returns a snapshot when the order actually changed.
            self.stats.changed = False
            try:
                snapshot = await builder.build_if_changed()
                if snapshot is not None and self.producer is not None:
                    await self.producer.send_and_wait(
                        self.settings.topic_schedule_snapshots, encode(snapshot), key=b"all"
                    )
                    metrics.EVENTS_OUT.labels(self.settings.topic_schedule_snapshots).inc()
            except Exception as exc:
                log.warning("schedule snapshot failed: %s", exc)
                self.stats.changed = True

    async def _sweep_loop(self) -> None:
        interval = min(10.0, max(0.5, self.settings.outbox_sweep_after_s / 3))
        while not self._stopping.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), interval)
            if self.publisher is None or self._stopping.is_set():
                continue
            try:
                await self.publisher.sweep(older_than_s=self.settings.outbox_sweep_after_s)
            except Exception as exc:
                log.warning("outbox sweep failed: %s", exc)

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
        if self.publisher is not None:
            await self.publisher.drain(budget)
        for pending in (self._kafka_commit, self._anchor_writer):
            if pending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(pending, budget)
        if self.consumer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.consumer.stop(), budget)
        if self.producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), budget)
        log.info("worker stopped")
