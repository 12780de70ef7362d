"""The kind "*" names the tier table's defaults and the statistics of all tasks: an event that
claims it is dead-lettered with the reason, and a task that holds it anyway (stored before the
schema refused it) counts its results once in the global statistics, not twice."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import orjson

from processors.contracts import ExecutionResult, encode
from tests.support.topics import read_topic, send_raw, wait_consumed
from tests.support.waiting import eventually

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def result(n: int, task_id: str) -> ExecutionResult:
    return ExecutionResult(
        event_id=f"star-r{n}",
        occurred_at=NOW,
        task_id=task_id,
        agent="coder",
        model="small",
        success=n != 2,
        finished_at=NOW,
        duration_ms=1000.0 * n,
        cost_usd=0.25 * n,
    )


async def test_kind_star_is_refused_and_never_counts_twice(make_settings, endpoints, worker_factory) -> None:
    settings = make_settings()
    tasks_topic, results_topic, _ = settings.input_topics.values()
    star_task = {
        "event_id": "star-t",
        "schema_version": 1,
        "occurred_at": NOW.isoformat(),
        "task_id": "STAR-1",
        "description": "a task that claims the reserved kind",
        "kind": "*",
    }
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            # A task of kind "*" stored before the schema refused the kind.
            await conn.execute(
                """INSERT INTO tasks (task_id, description, kind, occurred_at, content_hash, created_event_id)
                   VALUES ('STAR-0', 'stored earlier', '*', $1, '\\x00', 'star-t0')""",
                NOW,
            )
            await send_raw(settings, tasks_topic, [(b"STAR-1", orjson.dumps(star_task))])
            await send_raw(
                settings, results_topic, [(b"STAR-0", encode(result(n, "STAR-0"))) for n in (1, 2, 3)]
            )
            await wait_consumed(conn, settings, {tasks_topic: 1, results_topic: 3})
            letters = await read_topic(settings, settings.dead_letter_topic(tasks_topic), 1)
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM executions WHERE task_id = 'STAR-0'"),
                lambda n: n == 3,
            )
        rows = await conn.fetch(
            "SELECT scope, attempts, successes, duration_sum_ms, cost_sum_usd FROM arm_stats ORDER BY scope"
        )
        task = await conn.fetchrow("SELECT attempts, successes FROM tasks WHERE task_id = 'STAR-0'")
        refused = await conn.fetchval("SELECT count(*) FROM tasks WHERE task_id = 'STAR-1'")
    finally:
        await conn.close()
    assert [(r.headers["__connect.errors.exception.class.name"], r.value) for r in letters] == [
        (b"InvalidEvent", orjson.dumps(star_task))
    ]
    reason = letters[0].headers["__connect.errors.exception.message"].decode()
    assert "data.kind" in reason and '"*" is reserved' in reason
    assert refused == 0
    assert [tuple(r) for r in rows] == [("*", 3, 2, 6000.0, 1.5)], "one global row, each result once"
    assert tuple(task) == (3, 2)
