"""A rebalance while a batch's transaction is open: a second worker joins while the first one's
batch of results waits on a lock in PostgreSQL. Whether the batch commits within the time the
revoked worker holds the group (half the session timeout) or only after the partitions moved on
and the new owner read the same records, every result counts exactly once."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
import pytest

from processors.contracts import ExecutionResult, TaskCreated, encode
from tests.support.topics import send_raw, wait_consumed
from tests.support.waiting import eventually

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TASKS = 20
RESULTS = 40


def task(n: int) -> bytes:
    return encode(
        TaskCreated(
            event_id=f"rb-t{n}", occurred_at=NOW, task_id=f"RB-{n}", description=f"task {n}", kind="rebal"
        )
    )


def result(n: int) -> bytes:
    return encode(
        ExecutionResult(
            event_id=f"rb-r{n}",
            occurred_at=NOW,
            task_id=f"RB-{n % TASKS}",
            agent="coder",
            model="small",
            success=n % 3 != 0,
            finished_at=NOW,
            duration_ms=100.0,
            cost_usd=0.5,
        )
    )


async def waiting_on_a_lock(conn: asyncpg.Connection) -> int:
    return int(
        await conn.fetchval(
            """SELECT count(*) FROM pg_stat_activity
               WHERE datname = current_database() AND wait_event_type = 'Lock'"""
        )
    )


@pytest.mark.parametrize("hold_s", [1.0, 5.0], ids=["commits-before-handing-back", "commits-after-the-move"])
async def test_results_count_once_when_the_group_rebalances_during_a_commit(
    hold_s, make_settings, endpoints, worker_factory
) -> None:
    settings = make_settings(topic_partitions=2)  # session 6 s: the revoked worker holds 3 s at most
    tasks_topic, results_topic, _ = settings.input_topics.values()
    conn = await asyncpg.connect(endpoints.dsn)
    locker = await asyncpg.connect(endpoints.dsn)
    try:
        async with contextlib.AsyncExitStack() as stack:
            _, first = await stack.enter_async_context(worker_factory(settings))
            await send_raw(settings, tasks_topic, [(f"RB-{n}".encode(), task(n)) for n in range(TASKS)])
            await wait_consumed(conn, settings, {tasks_topic: TASKS})
            lock = locker.transaction()
            await lock.start()
            await locker.execute("LOCK TABLE arm_stats IN SHARE ROW EXCLUSIVE MODE")
            await send_raw(
                settings, results_topic, [(f"RB-{n % TASKS}".encode(), result(n)) for n in range(RESULTS)]
            )
            await eventually(lambda: waiting_on_a_lock(conn), lambda n: n >= 1, timeout_s=30)
            joining = asyncio.create_task(stack.enter_async_context(worker_factory(settings)))
            await asyncio.sleep(hold_s)
            await lock.rollback()
            _, second = await asyncio.wait_for(joining, 60)
            await wait_consumed(conn, settings, {tasks_topic: TASKS, results_topic: RESULTS}, timeout_s=60)
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM executions WHERE task_id LIKE 'RB-%'"),
                lambda n: n == RESULTS,
            )
            assert first.consumer is not None and second.consumer is not None
            owned = (first.consumer.assignment(), second.consumer.assignment())
        stats = await conn.fetch("SELECT scope, attempts, successes, cost_sum_usd FROM arm_stats")
        inbox = await conn.fetchval("SELECT count(*) FROM inbox WHERE event_id LIKE 'rb-%'")
    finally:
        await locker.close()
        await conn.close()
    assert all(owned), f"both workers own partitions after the rebalance: {owned}"
    assert len(owned[0]) + len(owned[1]) == 6 and not owned[0] & owned[1]
    successes = sum(1 for n in range(RESULTS) if n % 3 != 0)
    assert (
        sorted((r["attempts"], r["successes"], r["cost_sum_usd"]) for r in stats)
        == [(RESULTS, successes, 0.5 * RESULTS)] * 2
    ), [dict(r) for r in stats]
    assert inbox == TASKS + RESULTS
