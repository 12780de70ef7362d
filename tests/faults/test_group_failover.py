"""Two workers in one group: kill one, the other takes over; a third joins mid-stream."""

from __future__ import annotations

import asyncio
import time

import pytest

from streams.kafka import ensure_topics
from tests.faults.compare import compare, counts_by, dead_letters, hostile_sources, schedules, settle
from tests.faults.conftest import EVENTS, SEEDS, report
from tests.faults.flow import diagnose, inbox_total, publish_paced, wait_for_progress
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.processes import WorkerProcess, wait_for_log, worker_processes

pytestmark = pytest.mark.slow


async def test_survivor_takes_over_and_a_new_worker_joins_mid_stream(
    fault_settings, endpoints, tmp_path
) -> None:
    seed = SEEDS[0] + 100
    # Four partitions, so that every one of three workers owns some.
    settings = fault_settings(topic_partitions=4)
    planned = generate(seed, WorkloadShape(events=EVENTS, max_event_bytes=settings.max_event_bytes))
    truth = ground_truth(planned)
    await ensure_topics(settings, endpoints.bootstrap)
    logs = tmp_path / "logs"
    a, b, c = (WorkerProcess(settings, logs, name) for name in ("a", "b", "c"))
    with worker_processes(a, b, c):
        a.start()
        b.start()  # at the same moment, on a fresh database: both migrate and create indexes
        publishing = asyncio.create_task(publish_paced(settings, planned, duration_s=14))
        # Both own partitions (the second join moves half of them from the first) and work.
        await wait_for_log(a, "partitions assigned")
        await wait_for_log(b, "partitions assigned")
        await asyncio.sleep(2)
        before = await inbox_total(endpoints.dsn)
        assignments = b.log_text().count("partitions assigned")
        a.kill()
        killed_at = time.monotonic()
        # Recovery: the survivor is assigned the dead worker's partitions (once its session has
        # timed out) and makes progress.
        await wait_for_log(b, "partitions assigned", timeout_s=60, count=assignments + 1)
        waited = await wait_for_progress(endpoints.dsn, before, timeout_s=60)
        assert waited is not None, "the survivor made no progress:\n" + await diagnose(
            settings, endpoints.dsn
        )
        takeover_s = time.monotonic() - killed_at
        await asyncio.sleep(3)
        c.start()  # rebalance while events flow
        placed = await publishing
        observed, drained_s = await settle(endpoints.dsn, truth, timeout_s=120)
        state = await diagnose(settings, endpoints.dsn)
        letters, letter_copies = await dead_letters(settings)
        schedule_ids, schedule_repeats = await schedules(settings)
        survivors_alive = b.alive and c.alive
    verdict = compare(truth, observed, letters, hostile_sources(planned, placed))
    report(
        "group-failover",
        seed=seed,
        faults="SIGKILL 1 of 2 workers, then a 3rd joins (rebalance)",
        published=len(planned),
        by_kind=counts_by(planned),
        lost=verdict.lost,
        doubled=verdict.doubled,
        dead_lettered=len(letters),
        held=len(observed.held),
        recovery_s=round(takeover_s, 2),
        drain_after_publish_s=round(drained_s, 1),
        repeated_outputs=schedule_repeats + letter_copies,
    )
    assert verdict.problems == [], "\n".join(verdict.problems) + "\n" + state
    assert (verdict.lost, verdict.doubled) == (0, 0)
    assert schedule_ids == truth.predictions
    assert survivors_alive
    assert "partitions assigned" in c.log_text(), "the third worker never got partitions"
    assert not any("broker log" in w.log_text() for w in (a, b, c)), "false alarm about the broker's log"
