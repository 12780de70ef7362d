"""An upkeep loop whose database is not ready backs off instead of retrying at its idle pace, and
says when it works again: the learner started against a database that has not been migrated
(the vector type its pool needs and the learning queue do not exist yet), then migrated."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest

from processors.failures import Backoff
from processors.pipeline.learned_updates import LearnedLayer
from processors.postgres.migrations import migrate_database
from processors.postgres.pool import create_pool
from processors.scheduling.learned import LearnedConfig
from streams.runtime import Endpoints
from streams.worker.upkeep import learning_loop
from tests.support.waiting import eventually

IDLE_S = 0.01  # without the backoff the loop would retry about every 10 ms
BACKOFF = Backoff(initial_s=0.05, max_s=0.4)  # waits of 0.025-0.05, 0.05-0.1, 0.1-0.2, then 0.2-0.4 s


async def test_a_learner_whose_database_is_not_ready_backs_off_and_says_when_it_works_again(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streams.worker.upkeep")
    pool = await create_pool(endpoints.dsn, min_size=0)  # connects lazily: nothing to connect to yet
    layer = LearnedLayer(LearnedConfig(), "hash-384")
    stopping = asyncio.Event()
    loop = asyncio.create_task(learning_loop(pool, layer, 100, stopping, BACKOFF, idle_s=IDLE_S))
    try:
        await asyncio.sleep(1.5)
        failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        # Backed off, the tries in 1.5 s are the backoff's (at most 10 with the shortest waits, at
        # least 6 with the longest); at the idle pace they would be over a hundred.
        assert 6 <= len(failures) <= 10, failures
        counts = [int(re.search(r"\((\d+) in a row", m).group(1)) for m in failures]  # type: ignore[union-attr]
        assert counts == list(range(1, len(failures) + 1))
        waits = [float(re.search(r"next try in ([\d.]+) s", m).group(1)) for m in failures]  # type: ignore[union-attr]
        assert all(0.2 <= w <= 0.4 for w in waits[3:]), waits
        assert all(m.startswith("learning from queued outcomes failed") for m in failures)

        await migrate_database(endpoints.dsn)

        async def recovered() -> bool:
            return any("works again" in r.getMessage() for r in caplog.records)

        await eventually(recovered, bool, timeout_s=10)
    finally:
        stopping.set()
        await loop
        await pool.close()
    recovered = [r.getMessage() for r in caplog.records if "works again" in r.getMessage()]
    assert len(recovered) == 1
    total = len([r for r in caplog.records if r.levelno == logging.WARNING])
    assert recovered[0] == f"learning from queued outcomes works again after {total} failures in a row"
