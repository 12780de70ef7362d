"""First outcomes queue task vectors for the neighbour index (sql/0006); neighbours find them
before and after the merger has indexed them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from processors.contracts import ExecutionResult, TaskCreated, encode
from processors.postgres import index_queue
from processors.records import Incoming, SourceRef
from streams.runtime import Runtime, open_runtime
from tests.support.topics import send_raw, wait_consumed
from tests.support.waiting import eventually

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
DESCRIPTION = "rotate the TLS certificates of the billing gateway"


def task(task_id: str, description: str = DESCRIPTION) -> TaskCreated:
    return TaskCreated(
        event_id=f"created-{task_id}", occurred_at=T0, task_id=task_id, description=description, kind="ops"
    )


def outcome(task_id: str, n: int = 0) -> ExecutionResult:
    return ExecutionResult(
        event_id=f"result-{task_id}-{n}",
        occurred_at=T0 + timedelta(minutes=5),
        task_id=task_id,
        agent="ops-agent",
        model="small",
        success=True,
        finished_at=T0 + timedelta(minutes=5),
        duration_ms=1000.0,
        cost_usd=0.01,
    )


async def _process(runtime: Runtime, events: list[TaskCreated] | list[ExecutionResult], offset: int) -> None:
    pipeline = runtime.pipeline
    processor = pipeline.tasks if isinstance(events[0], TaskCreated) else pipeline.results
    topic = "in"
    items = [Incoming(e, SourceRef(topic, 0, offset + i), b"") for i, e in enumerate(events)]
    await processor.process(items, [], [SourceRef(topic, 0, offset + len(events) - 1)])  # type: ignore[arg-type]


async def _state(conn: asyncpg.Connection) -> tuple[list[str], list[str]]:
    queued = [r["task_id"] for r in await conn.fetch("SELECT task_id FROM task_index_queue ORDER BY 1")]
    indexed = [
        r["task_id"]
        for r in await conn.fetch("SELECT task_id FROM task_embeddings WHERE has_outcome ORDER BY 1")
    ]
    return queued, indexed


async def _similar(runtime: Runtime, probe: TaskCreated) -> list[str]:
    _, schedules = await runtime.pipeline.tasks.plan([probe])
    return [s.task_id for s in schedules[0].similar_tasks]


async def test_a_first_outcome_queues_the_vector_and_neighbours_find_it_before_and_after_the_merge(
    make_settings, endpoints
) -> None:
    runtime = await open_runtime(make_settings(), endpoints)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await _process(runtime, [task("A"), task("B", "write the quarterly newsletter about hiring")], 0)
        await _process(runtime, [outcome("A")], 10)
        assert await _state(conn) == (["A"], [])  # queued, not yet in the HNSW index
        probe = task("P")
        assert await _similar(runtime, probe) == ["A"]  # B has no outcome: never a neighbour

        # A second outcome of a queued task and an outcome of B: each queued once.
        await _process(runtime, [outcome("A", 1), outcome("B")], 20)
        assert await _state(conn) == (["A", "B"], [])

        assert await index_queue.merge(conn, 1) == 1  # oldest first, one per call here
        assert await index_queue.merge(conn, 10) == 1
        assert await index_queue.merge(conn, 10) == 0
        assert await _state(conn) == ([], ["A", "B"])
        assert (await _similar(runtime, probe))[0] == "A"  # now through the index
    finally:
        await conn.close()
        await runtime.close()


async def test_past_the_queue_limit_results_index_their_tasks_themselves(make_settings, endpoints) -> None:
    runtime = await open_runtime(make_settings(index_queue_limit=1), endpoints)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await _process(runtime, [task("A"), task("B"), task("C")], 0)
        await _process(runtime, [outcome("A")], 10)
        await _process(runtime, [outcome("B"), outcome("C")], 20)  # queue full: inline
        assert await _state(conn) == (["A"], ["B", "C"])
    finally:
        await conn.close()
        await runtime.close()


async def test_the_worker_merges_the_queue_into_the_index(make_settings, endpoints, worker_factory) -> None:
    settings = make_settings(index_merge_batch=3)
    tasks = [task(f"T{i}", f"{DESCRIPTION} on host {i}") for i in range(10)]
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await send_raw(
                settings, settings.topic_task_created, [(t.task_id.encode(), encode(t)) for t in tasks]
            )
            await wait_consumed(conn, settings, {settings.topic_task_created: len(tasks)})
            results = [outcome(t.task_id) for t in tasks]
            await send_raw(
                settings, settings.topic_execution_result, [(r.task_id.encode(), encode(r)) for r in results]
            )
            await wait_consumed(conn, settings, {settings.topic_execution_result: len(results)})
            _, indexed = await eventually(lambda: _state(conn), lambda s: not s[0], timeout_s=30)
            assert indexed == sorted(t.task_id for t in tasks)
    finally:
        await conn.close()
