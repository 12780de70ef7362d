"""Execution results that arrive before their task wait, then count exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from processors.contracts import ExecutionResult, TaskCreated, encode
from tests.support.tables import learned_state
from tests.support.topics import read_topic, send_raw, wait_consumed
from tests.support.waiting import eventually

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def result(event_id: str, model: str, success: bool, minutes: int) -> ExecutionResult:
    return ExecutionResult(
        event_id=event_id,
        occurred_at=T0 + timedelta(minutes=minutes),
        task_id="LATE",
        agent="coder",
        model=model,
        success=success,
        finished_at=T0 + timedelta(minutes=minutes),
        duration_ms=1000.0 * minutes,
        cost_usd=0.01,
    )


async def test_a_result_for_an_unknown_task_is_held_then_applied_once_when_the_task_arrives(
    make_settings, endpoints, worker_factory
) -> None:
    settings = make_settings()
    tasks_topic, results_topic = settings.topic_task_created, settings.topic_execution_result
    early = [result("r-small", "small", True, 5), result("r-large", "large", False, 7)]
    task = TaskCreated(
        event_id="created-LATE",
        occurred_at=T0,
        task_id="LATE",
        description="add missing null check in billing handler",
        kind="code",
    )
    later = result("r-medium", "medium", True, 9)

    def as_records(*events: ExecutionResult | TaskCreated) -> list[tuple[bytes, bytes]]:
        return [(e.task_id.encode(), encode(e)) for e in events]

    conn = await asyncpg.connect(endpoints.dsn)

    async def count(sql: str) -> int:
        return int(await conn.fetchval(sql))

    try:
        async with worker_factory(settings):
            # Results first, one of them twice (a producer retry): held, once each, nothing counted.
            await send_raw(settings, results_topic, as_records(*early, early[0]))
            await wait_consumed(conn, settings, {results_topic: 3})
            held = await conn.fetch("SELECT event_id, task_id, payload FROM held_results ORDER BY event_id")
            assert [(r["event_id"], r["task_id"]) for r in held] == [("r-large", "LATE"), ("r-small", "LATE")]
            assert {bytes(r["payload"]) for r in held} == {encode(e) for e in early}, "held as received"
            for table in ("executions", "arm_stats", "task_arm_outcomes", "tasks"):
                assert await count(f"SELECT count(*) FROM {table}") == 0, table

            # The task arrives: both results apply in the same transaction.
            await send_raw(settings, tasks_topic, as_records(task))
            await eventually(lambda: count("SELECT count(*) FROM executions"), lambda n: n == 2)
            applied = await learned_state(conn)

            # Everything again (duplicates) changes nothing; a new result counts normally.
            await send_raw(settings, results_topic, as_records(*early))
            await send_raw(settings, tasks_topic, as_records(task))
            await wait_consumed(conn, settings, {results_topic: 5, tasks_topic: 2})
            after_duplicates = await learned_state(conn)
            await send_raw(settings, results_topic, as_records(later))
            await eventually(lambda: count("SELECT count(*) FROM executions"), lambda n: n == 3)
            final = await learned_state(conn)
            schedules = await read_topic(settings, settings.topic_task_schedules, 1)
    finally:
        await conn.close()

    assert applied["held_results"] == []
    executions = {r["event_id"]: r for r in applied["executions"]}
    assert set(executions) == {"r-small", "r-large"}
    assert all(r["kind"] == "code" for r in executions.values()), "applied with the task's kind"
    assert _counts(applied["arm_stats"], "scope") == {
        ("*", "small"): (1, 1),
        ("*", "large"): (1, 0),
        ("code", "small"): (1, 1),
        ("code", "large"): (1, 0),
    }
    assert _counts(applied["task_arm_outcomes"], "task_id") == {
        ("LATE", "small"): (1, 1),
        ("LATE", "large"): (1, 0),
    }
    (row,) = applied["tasks"]
    assert (row["attempts"], row["successes"], row["status"]) == (2, 1, "succeeded")
    assert {(p["model"], p["outcome"]) for p in applied["arm_profiles"]} == {
        ("small", "success"),
        ("large", "failure"),
    }

    for name in ("arm_stats", "task_arm_outcomes", "tasks", "executions", "held_results", "arm_profiles"):
        assert after_duplicates[name] == applied[name], name
    assert _counts(final["arm_stats"], "scope")[("code", "medium")] == (1, 1)
    (row,) = final["tasks"]
    assert (row["attempts"], row["successes"]) == (3, 2)
    assert len(schedules) == 1, "the task was scheduled once"


def _counts(rows: list[dict[str, Any]], scope: str) -> dict[tuple[str, str], tuple[int, int]]:
    return {(r[scope], r["model"]): (r["attempts"], r["successes"]) for r in rows}
