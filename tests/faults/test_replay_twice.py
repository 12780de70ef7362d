"""Replaying every input topic from the beginning, twice, leaves the statistics exactly as the
single pass left them, and publishes nothing new."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from streams.kafka import ensure_topics
from tests.faults.compare import compare, counts_by, dead_letters, hostile_sources, schedules, settle
from tests.faults.conftest import EVENTS, SEEDS, report
from tests.faults.flow import publish_paced
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.processes import WorkerProcess, run_cli, worker_processes

pytestmark = pytest.mark.slow

# Everything a replay could disturb: statistics, learned profiles, history, the ledger itself.
SNAPSHOT = {
    "arm_stats": "SELECT scope, agent, model, attempts, successes, duration_sum_ms, duration_n, cost_sum_usd,"
    " cost_n FROM arm_stats ORDER BY 1, 2, 3",
    "task_arm_outcomes": "SELECT task_id, agent, model, attempts, successes, duration_sum_ms, duration_n,"
    " cost_sum_usd, cost_n, last_finished_at FROM task_arm_outcomes ORDER BY 1, 2, 3",
    "tasks": "SELECT task_id, status, attempts, successes, last_outcome_at, content_hash FROM tasks ORDER BY 1",
    "arm_profiles": "SELECT agent, model, embedding_model, outcome, vector::text, weight FROM arm_profiles"
    " ORDER BY 1, 2, 3, 4",
    "executions": "SELECT event_id, task_id, success, duration_ms, cost_usd FROM executions ORDER BY 1",
    "held_results": "SELECT event_id FROM held_results ORDER BY 1",
    "messages": "SELECT message_id, content_hash FROM messages ORDER BY 1",
    "predictions": "SELECT schedule_id, agent, model, success_probability FROM predictions ORDER BY 1",
    "inbox": "SELECT count(*) FROM inbox",
    "outbox": "SELECT count(*) FROM outbox",
}


async def snapshot(dsn: str) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in SNAPSHOT.items()}
    finally:
        await conn.close()


def differences(a: dict[str, list[tuple[Any, ...]]], b: dict[str, list[tuple[Any, ...]]]) -> list[str]:
    return [f"{name}: {len(a[name])} rows before, {len(b[name])} after" for name in a if a[name] != b[name]]


async def test_replaying_all_topics_twice_changes_no_statistic(fault_settings, endpoints, tmp_path) -> None:
    seed = SEEDS[0] + 400
    settings = fault_settings()
    planned = generate(seed, WorkloadShape(events=EVENTS, max_event_bytes=settings.max_event_bytes))
    truth = ground_truth(planned)
    await ensure_topics(settings, endpoints.bootstrap)
    worker = WorkerProcess(settings, tmp_path / "logs")
    with worker_processes(worker):
        worker.start()
        placed = await publish_paced(settings, planned, duration_s=3, chunk=500)
        observed, _ = await settle(endpoints.dsn, truth, timeout_s=240)
        single_pass = await snapshot(endpoints.dsn)
        outputs_before = await schedules(settings)
        letters_before = await dead_letters(settings)
        replays = []
        for _ in range(2):  # while the worker keeps running, as an operator would do it
            done = run_cli(settings, "replay", timeout_s=300)
            assert done.returncode == 0, done.stderr[-3000:]
            replays.append(" ".join(done.stdout.split()))  # the console wraps long lines
        after_replays = await snapshot(endpoints.dsn)
        outputs_after = await schedules(settings)
        letters_after = await dead_letters(settings)
    verdict = compare(truth, observed, letters_before[0], hostile_sources(planned, placed))
    changed = differences(single_pass, after_replays)
    report(
        "replay-twice",
        seed=seed,
        faults="2 full replays of every input topic",
        published=len(planned),
        by_kind=counts_by(planned),
        lost=verdict.lost,
        doubled=verdict.doubled,
        dead_lettered=len(letters_before[0]),
        replays=replays,
        tables_changed=changed,
    )
    assert verdict.problems == [], "\n".join(verdict.problems)
    assert changed == []
    assert outputs_after == outputs_before, "a replay published schedules again"
    assert set(letters_after[0]) == set(letters_before[0]), "a replay dead-lettered again"
    assert all(": 0 applied," in line for line in replays), replays
