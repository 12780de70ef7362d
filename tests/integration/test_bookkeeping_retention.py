"""The inbox keeps event ids for the replay window only, and a replay inside the window is still
exactly-once: records older than the window are not re-applied, newer ones find their ids."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from prometheus_client import REGISTRY

from processors.contracts import encode
from processors.demo_workload import SampleWorkload
from processors.errors import ConfigurationError
from streams.runtime import Endpoints, open_runtime
from streams.worker.bookkeeping import DAY_S, run_retention
from streams.worker.replay import replay
from tests.support.tables import differences, learned_state
from tests.support.topics import send_raw, wait_consumed


async def test_inbox_ids_expire_after_the_replay_window_and_replays_inside_it_stay_exactly_once(
    make_settings, endpoints, worker_factory
) -> None:
    # The worker's own retention pass runs only at its start (nothing is old then).
    settings = make_settings(retention_interval_s=3600.0)
    topic = settings.topic_task_created
    samples = SampleWorkload(seed=23).tasks(20)
    older, newer = samples[:10], samples[10:]
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await send_raw(settings, topic, [(s.task.task_id.encode(), encode(s.task)) for s in older])
            await wait_consumed(conn, settings, Counter({topic: 10}))
            await asyncio.sleep(5)
            middle = time.time()
            await asyncio.sleep(5)
            await send_raw(settings, topic, [(s.task.task_id.encode(), encode(s.task)) for s in newer])
            await wait_consumed(conn, settings, Counter({topic: 20}))
        state = await learned_state(conn)
        assert await conn.fetchval("SELECT count(*) FROM inbox") == 20

        # A window that ends between the two groups: the older ids go, the newer ones stay.
        window = settings.model_copy(update={"replay_window_days": (time.time() - middle) / DAY_S})
        runtime = await open_runtime(window, Endpoints(endpoints.bootstrap, endpoints.dsn))
        try:
            deleted = await run_retention(window, runtime.pool)
            inbox = await conn.fetchval("SELECT count(*) FROM inbox")
            gauge = REGISTRY.get_sample_value("tasksage_bookkeeping_rows", {"table": "inbox"})
            report = await replay(runtime, [topic])
            with pytest.raises(ConfigurationError, match="older than the replay window"):
                await replay(runtime, [topic], since=datetime.now(UTC) - timedelta(seconds=60))
        finally:
            await runtime.close()
        after = await learned_state(conn)
    finally:
        await conn.close()
    # The older ten are outside the window and not applied again; the newer ten are duplicates.
    assert deleted == {"inbox": 10}
    assert (inbox, gauge) == (10, 10)
    assert (report.outside_window, report.records, report.processed, report.duplicates) == (10, 10, 0, 10)
    # Nothing learned changed; the inbox lost exactly the older ten ids (by retention).
    assert [d.split(":")[0] for d in differences(state, after)] == ["inbox"]
    assert {r["event_id"] for r in state["inbox"]} - {r["event_id"] for r in after["inbox"]} == {
        s.task.event_id for s in older
    }
