"""An upkeep loop whose database is not ready backs off instead of retrying at its idle pace, and
says when it works again: the learner started against a database that has not been migrated
(the vector type its pool needs and the learning queue do not exist yet), then migrated. A missing
type is not an outage that retrying mends, so each try waits the longest backoff and is logged as
an error with its traceback (tests/unit/test_periodic.py has the growing backoff of an outage)."""

from __future__ import annotations

import asyncio
import logging

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
BACKOFF = Backoff(initial_s=0.05, max_s=0.4)


async def test_a_learner_whose_database_is_not_migrated_waits_the_longest_backoff_and_says_when_it_works_again(
    endpoints: Endpoints, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="streams.worker.periodic")
    pool = await create_pool(endpoints.dsn, min_size=0)  # connects lazily: nothing to connect to yet
    layer = LearnedLayer(LearnedConfig(), "hash-384")
    stopping = asyncio.Event()
    loop = asyncio.create_task(learning_loop(pool, layer, 100, stopping, BACKOFF, idle_s=IDLE_S))
    try:
        await asyncio.sleep(1.5)
        failures = [r for r in caplog.records if r.levelno == logging.ERROR]
        # Tries at about 0, 0.4, 0.8 and 1.2 s (the first once a connection attempt has failed);
        # at the idle pace they would be over a hundred.
        assert 3 <= len(failures) <= 4, [r.getMessage() for r in failures]
        assert [r.getMessage() for r in failures] == [
            "learning from queued outcomes failed with ValueError, which retrying does not mend:"
            f" a bug or data it cannot read ({n} in a row, next try in 0.40 s): unknown type: public.vector"
            for n in range(1, len(failures) + 1)
        ]
        assert all(r.exc_info is not None for r in failures)

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
    total = len([r for r in caplog.records if r.levelno == logging.ERROR])
    assert recovered[0] == f"learning from queued outcomes works again after {total} failures in a row"
