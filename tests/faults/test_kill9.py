"""kill -9 the worker at random points while mixed events flow; nothing lost, nothing doubled."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from streams.kafka import ensure_topics
from tests.faults.compare import (
    compare,
    counts_by,
    dead_letters,
    hostile_sources,
    schedules,
    settle,
    where_missing,
)
from tests.faults.conftest import EVENTS, KILLS, PUBLISH_S, SEEDS, report
from tests.faults.flow import diagnose, inbox_total, publish_paced, wait_for_progress
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.processes import WorkerProcess, worker_processes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("seed", SEEDS)
async def test_killed_worker_restarts_without_losing_or_doubling_anything(
    seed, fault_settings, endpoints, tmp_path
) -> None:
    # A kill that lands while the worker replays, one record at a time, the batch the previous
    # kill interrupted dies on a record twice in a row: to the crash guard that is a poison pill,
    # and it dead-letters the record (test_poison_pill checks that it does). With KILLS kills no
    # record can die more than KILLS times, so a threshold above that leaves this test checking
    # what it is for: that a killed worker loses and doubles nothing.
    settings = fault_settings(poison_pill_after=KILLS + 1)
    planned = generate(seed, WorkloadShape(events=EVENTS, max_event_bytes=settings.max_event_bytes))
    truth = ground_truth(planned)
    await ensure_topics(settings, endpoints.bootstrap)
    rng = random.Random(seed * 7919)
    worker = WorkerProcess(settings, tmp_path / "logs")
    recoveries: list[float] = []
    with worker_processes(worker):
        worker.start()
        publishing = asyncio.create_task(publish_paced(settings, planned, duration_s=PUBLISH_S))
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(1.0, 4.0))
            before = await inbox_total(endpoints.dsn)
            worker.kill()
            killed_at = time.monotonic()
            await asyncio.sleep(rng.choice([0.0, 0.2, 1.0]))
            worker.start()
            if before < sum(truth.inbox.values()):
                waited = await wait_for_progress(endpoints.dsn, before, timeout_s=60)
                assert waited is not None, "no progress after the restart:\n" + await diagnose(
                    settings, endpoints.dsn
                )
                recoveries.append(time.monotonic() - killed_at)
        placed = await publishing
        observed, drained_s = await settle(endpoints.dsn, truth, timeout_s=240)
        state = await diagnose(settings, endpoints.dsn)
        letters, letter_copies = await dead_letters(settings)
        schedule_ids, schedule_repeats = await schedules(settings)
    verdict = compare(truth, observed, letters, hostile_sources(planned, placed))
    report(
        "kill-9",
        seed=seed,
        faults=f"{KILLS} x SIGKILL",
        published=len(planned),
        by_kind=counts_by(planned),
        lost=verdict.lost,
        doubled=verdict.doubled,
        dead_lettered=len(letters),
        held=len(observed.held),
        recovery_s=[round(r, 2) for r in recoveries],
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        group_instance_id=settings.group_instance_id,
        drain_after_publish_s=round(drained_s, 1),
        repeated_outputs=schedule_repeats + letter_copies,
    )
    explain = "\n".join([*verdict.problems, where_missing(truth, observed, planned, placed), state])
    assert verdict.problems == [], explain
    assert (verdict.lost, verdict.doubled) == (0, 0)
    assert schedule_ids == truth.predictions
    assert worker.starts == KILLS + 1
    # Positions ahead of Tansu's end offsets (one batch short) are no loss: no false alarm.
    assert "broker log" not in worker.log_text()
