"""Database reference loop of `tasksage bench`: the processors' own SQL, without Kafka.

Fresh events of each stream, already decoded, go to the stream's processor in full batches
one after another, the way the worker calls it, followed by the two statements the worker
adds per batch (the partition anchor, and the outbox delete once records are "published").
What remains is the same repository code and SQL the pipeline runs per event, plus embedding
and scheduling on this process's CPU; what is gone is the broker, decoding and the produce
round trip, and the worker's background loops (the neighbour-index merger, held results,
snapshots), whose work the measured pipeline does alongside. asyncpg's query logger times
every statement, so the report names the statements that hold a stream back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from processors.embedders import create_embedder
from processors.failures import Backoff
from processors.pipeline.assembly import Pipeline, build_pipeline
from processors.pipeline.batch_steps import MIN_SEARCH_CHUNK
from processors.pipeline.handler import BatchProcessor
from processors.postgres import ledger
from processors.postgres.pool import Conn, LoggedQuery, Pool
from processors.records import Incoming, RawRecord, SourceRef
from processors.scheduling.tiers import load_tiers
from streams.bench.report import FIRST_OUTCOME_EVERY, STREAMS
from streams.bench.statements import DatabaseLoopFigures, QueryTiming, loop_figures
from streams.bench.workload import BenchWorkload
from streams.metrics import Health
from streams.runtime import open_pool, pipeline_config
from streams.search_runtime import metered
from streams.settings import Settings
from streams.worker.log_integrity import LogIntegrity

log = logging.getLogger(__name__)
PHASE = "dbref"  # in every event and task id: never collides with the measured phases
SUFFIX = ".dbref"  # of the reference's consumer group and source topics
METHOD = (
    "fresh pre-decoded events handed straight to each stream's processor in batches of "
    "batch_max_records, one batch after another, plus the worker's per-batch anchor write and "
    "outbox delete; no broker, no decoding, no produce, and none of the worker's background loops "
    "(neighbour-index merger, held results, snapshots). Own consumer group and source topic names. "
    "Statement times from asyncpg's query logger (client side: round trip and event-loop waits included); "
    "db_share_of_wall: wall time with at least one statement in flight"
)


class QueryRecorder:
    """Every statement of every pool connection, from asyncpg's query logger."""

    __slots__ = ("timings",)

    def __init__(self) -> None:
        self.timings: list[QueryTiming] = []

    def __call__(self, record: LoggedQuery) -> None:
        # asyncpg calls this with call_soon right after the statement: now is (nearly) its end.
        self.timings.append(QueryTiming(record.query, time.monotonic() - record.elapsed, record.elapsed))

    async def attach(self, conn: Conn) -> None:
        # The pool's setup hook, run on every acquire; loggers are a set, so this adds one once.
        conn.add_query_logger(self)

    async def take(self) -> list[QueryTiming]:
        await asyncio.sleep(0)  # let the logger calls of the last statements run first
        taken, self.timings = self.timings, []
        return taken


def reference_settings(settings: Settings) -> Settings:
    """Own consumer group: its positions and anchors never move the measured group's."""
    return settings.model_copy(update={"consumer_group": settings.consumer_group + SUFFIX})


def stream_events(
    workload: BenchWorkload, stream: str, phase: str, n: int, history: int, created: list[str]
) -> list[Any]:
    """Like the measured phases: one result in FIRST_OUTCOME_EVERY is the first outcome of a task
    this loop created (`created`, filled by its task-created run), the rest are for history."""
    events: list[Any] = []
    for i in range(1, n + 1):
        if stream == "task-created":
            task = workload.task_created(phase, i)
            created.append(task.task_id)
            events.append(task)
        elif stream == "execution-result":
            first = created.pop() if i % FIRST_OUTCOME_EVERY == 0 and created else None
            events.append(workload.execution_result(phase, i, history, first))
        else:
            events.append(workload.message(phase, i))
    return events


def as_batches(events: Sequence[Any], topic: str, partitions: int, size: int) -> list[list[Incoming[Any]]]:
    """Events spread over the partitions round robin, with increasing offsets, cut in batches."""
    items = [
        Incoming(e, SourceRef(topic, i % partitions, i // partitions), raw=b"") for i, e in enumerate(events)
    ]
    return [items[i : i + size] for i in range(0, len(items), size)]


class DatabaseLoop:
    """The pipeline the worker builds, on a pool whose connections log their statements."""

    def __init__(self, settings: Settings, pool: Pool, pipeline: Pipeline, recorder: QueryRecorder) -> None:
        self.settings = settings
        self.pool = pool
        self.recorder = recorder
        self.processors: dict[str, BatchProcessor] = {
            "task-created": pipeline.tasks,
            "execution-result": pipeline.results,
            "message-ingested": pipeline.messages,
        }
        # Only its anchor write is used: it needs no broker for that.
        self.integrity = LogIntegrity(settings, settings.kafka_bootstrap_servers or "", pool, Health())

    async def run_batches(self, stream: str, batches: Sequence[Sequence[Incoming[Any]]]) -> int:
        """Process the batches one after another; returns the events applied (or held)."""
        processor = self.processors[stream]
        done = 0
        for batch in batches:
            sources = [i.source for i in batch]
            result = await processor.process(batch, [], sources)
            await self.integrity.remember(
                [RawRecord(s.topic, s.partition, s.offset, None, b"") for s in sources]
            )
            cleanup = ledger.outbox_cleanup(result.outputs, [])
            if cleanup:  # what the worker's publisher does once the broker acknowledged them
                async with self.pool.acquire() as conn:
                    await ledger.clean_outbox(conn, cleanup)
            done += result.processed + result.held
        return done

    async def measure(self, stream: str, events: Sequence[Any]) -> DatabaseLoopFigures:
        topic = self.settings.input_topics[stream] + SUFFIX
        s = self.settings
        batches = as_batches(events, topic, s.topic_partitions, s.batch_max_records)
        await self.recorder.take()  # statements of earlier work are not this stream's
        started = time.monotonic()
        done = await self.run_batches(stream, batches)
        wall = time.monotonic() - started
        if done != len(events):
            log.warning("database loop %s: %d of %d events applied", stream, done, len(events))
        return loop_figures(await self.recorder.take(), len(events), len(batches), wall)


async def database_loop(
    settings: Settings, workload: BenchWorkload, history: int, events: int, streams: Sequence[str] = STREAMS
) -> dict[str, dict[str, Any]]:
    """Each stream's figures (see `DatabaseLoopFigures.as_dict`), streams in STREAMS order so the
    result run has this loop's own new tasks to report first outcomes for. The measured worker
    has already registered the model, created the indexes and loaded the tiers."""
    s = reference_settings(settings)
    dsn = s.database_url.get_secret_value() if s.database_url else ""
    recorder = QueryRecorder()
    # All connections opened up front, as the measured worker's pool had long grown to its size.
    pool = await open_pool(
        s, dsn, min_size=s.db_pool_max, application_name="tasksage-bench-dbref", setup=recorder.attach
    )
    embedder = metered(s, pool, create_embedder(s.embedder_config()), s.embedder)
    try:
        pipeline = build_pipeline(
            pool, embedder, pipeline_config(s), load_tiers(s.tiers_file), s.input_topics,
            Backoff(s.retry_initial_s, s.retry_max_s), s.snapshot_size,
        )  # fmt: skip
        loop = DatabaseLoop(s, pool, pipeline, recorder)
        # Enough events for the searches to run on every connection: each one prepares its
        # statements and looks up the vector types once, as the worker's pool had long done.
        warm_up = MIN_SEARCH_CHUNK * s.db_pool_max
        warm: list[str] = []
        for stream in STREAMS:
            warm_events = stream_events(workload, stream, PHASE + "warm", warm_up, history, warm)
            topic = s.input_topics[stream] + SUFFIX + "-warm"
            await loop.run_batches(stream, as_batches(warm_events, topic, 1, s.batch_max_records))
        created: list[str] = []
        out: dict[str, dict[str, Any]] = {}
        for stream in (s for s in STREAMS if s in streams):
            batch_events = stream_events(workload, stream, PHASE, events, history, created)
            out[stream] = (await loop.measure(stream, batch_events)).as_dict()
        return out
    finally:
        await embedder.aclose()
        await pool.close()
