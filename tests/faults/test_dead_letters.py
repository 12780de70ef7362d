"""Results whose task never comes are dead-lettered after the configured wait; `tasksage dlq`
lists dead letters and sends fixed (or unchanged) ones back, without doubling anything."""

from __future__ import annotations

import asyncio

import asyncpg
import orjson
import pytest

from streams.kafka import ensure_topics
from tests.faults.compare import dead_letters
from tests.faults.workload import RESULTS, TASKS
from tests.support.processes import RawProducer, WorkerProcess, run_cli, wait_for_log, worker_processes
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow


def task(task_id: str, event_id: str, description: str | None = "rotate the signing keys") -> bytes:
    doc = {
        "event_id": event_id,
        "schema_version": 1,
        "occurred_at": "2026-03-01T10:00:00+00:00",
        "task_id": task_id,
    }
    if description is not None:
        doc["description"] = description
    return orjson.dumps(doc)


def result(task_id: str, event_id: str) -> bytes:
    return orjson.dumps(
        {
            "event_id": event_id,
            "schema_version": 1,
            "occurred_at": "2026-03-01T11:00:00+00:00",
            "task_id": task_id,
            "agent": "coder",
            "model": "small",
            "success": True,
            "finished_at": "2026-03-01T11:00:00+00:00",
            "duration_ms": 1200.0,
        }
    )


async def test_held_results_expire_to_the_dlq_and_dlq_replay_sends_fixed_records_back(
    fault_settings, endpoints, tmp_path
) -> None:
    settings = fault_settings(held_result_timeout_s=2.0, held_result_check_interval_s=0.3)
    tasks_topic, results_topic = settings.input_topics[TASKS], settings.input_topics[RESULTS]
    await ensure_topics(settings, endpoints.bootstrap)
    worker = WorkerProcess(settings, tmp_path / "logs")
    conn = await asyncpg.connect(endpoints.dsn)

    async def rows(sql: str) -> list[tuple[object, ...]]:
        return [tuple(r) for r in await conn.fetch(sql)]

    try:
        with worker_processes(worker):
            worker.start()
            await wait_for_log(worker, "partitions assigned")
            async with RawProducer(settings) as producer:
                placed = await producer.send(
                    [
                        (results_topic, b"ghost", result("ghost", "r-ghost")),  # its task never comes
                        (results_topic, b"tardy", result("tardy", "r-tardy")),  # its task comes too late
                        (results_topic, b"early", result("early", "r-early")),  # its task comes in time
                        (tasks_topic, b"early", task("early", "t-early")),
                        (tasks_topic, b"broken", task("broken", "t-broken", description=None)),
                    ]
                )
            letters = await eventually(
                lambda: dead_letters(settings), lambda found: len(found[0]) == 3, timeout_s=60
            )
            by_source = letters[0]
            expired = {s: d for s, d in by_source.items() if d.error_class == "HeldResultExpired"}
            # Kafka Connect's headers name where each record came from and why it failed.
            assert set(expired) == {(p.topic, p.partition, p.offset) for p in placed[:2]}
            assert all("no task-created event for task" in d.message for d in expired.values())
            assert (tasks_topic, placed[4].partition, placed[4].offset) in by_source
            assert await rows("SELECT event_id FROM executions") == [("r-early",)]
            assert await rows("SELECT count(*) FROM held_results") == [(0,)]

            # The late task arrives; the operator sends the expired results back unchanged.
            async with RawProducer(settings) as producer:
                await producer.send([(tasks_topic, b"tardy", task("tardy", "t-tardy"))])
            await eventually(lambda: rows("SELECT task_id FROM tasks WHERE task_id = 'tardy'"), bool, 30)
            done = run_cli(settings, "dlq", "replay", "--error-class", "HeldResultExpired")
            assert done.returncode == 0, done.stderr[-2000:]
            assert "2 records sent back" in done.stdout

            # The broken task: list as JSON, fix the value, send it back from the file.
            listed = run_cli(settings, "dlq", "list", "--json", "--error-class", "InvalidEvent")
            assert listed.returncode == 0, listed.stderr[-2000:]
            lines = [orjson.loads(line) for line in listed.stdout.splitlines()]
            assert [line["source"]["topic"] for line in lines] == [tasks_topic]
            lines[0]["value"]["description"] = "rotate the signing keys (fixed)"
            fixed = tmp_path / "fixed.jsonl"
            fixed.write_bytes(b"".join(orjson.dumps(line) + b"\n" for line in lines))
            done = run_cli(settings, "dlq", "replay", "--from-file", str(fixed))
            assert done.returncode == 0, done.stderr[-2000:]

            await eventually(
                lambda: rows("SELECT event_id FROM executions ORDER BY 1"),
                lambda found: found == [("r-early",), ("r-tardy",)],
                timeout_s=30,
            )
            await eventually(lambda: rows("SELECT task_id FROM tasks WHERE task_id = 'broken'"), bool, 30)
            # The ghost's result waits again, expires again, and is not dead-lettered twice.
            await asyncio.sleep(settings.held_result_timeout_s + 1.5)
            assert await rows("SELECT count(*) FROM held_results") == [(0,)]
            again = await dead_letters(settings)
            assert len(again[0]) == 3
            assert await rows(
                "SELECT attempts FROM tasks WHERE task_id IN ('early', 'tardy') ORDER BY 1"
            ) == [
                (1,),
                (1,),
            ]
    finally:
        await conn.close()
