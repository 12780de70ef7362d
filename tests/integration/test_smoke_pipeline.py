"""One task through the real broker and database: it is scheduled from the tier table."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg

from processors.contracts import TaskCreated
from streams.client import TasksagePublisher
from tests.support.waiting import eventually


async def test_cold_start_task_is_scheduled_from_the_tier_table(settings, endpoints, worker_factory) -> None:
    async with worker_factory(settings):
        async with TasksagePublisher(settings) as publisher:
            await publisher.publish_task(
                TaskCreated(
                    event_id="e-1",
                    occurred_at=datetime.now(UTC),
                    task_id="T1",
                    description="fix typo in billing error message",
                    kind="code",
                )
            )
        conn = await asyncpg.connect(endpoints.dsn)
        try:
            row = await eventually(
                lambda: conn.fetchrow(
                    "SELECT agent, model, cold_start FROM predictions WHERE task_id = 'T1'"
                ),
                lambda r: r is not None,
            )
        finally:
            await conn.close()
    assert row["cold_start"] is True
    assert (row["agent"], row["model"]) == ("coder", "small")
