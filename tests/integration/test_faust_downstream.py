"""The example downstream faust app (streams/downstream/example.py), run as its own process
against the broker, acts once on every schedule the worker published."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path

import orjson

from processors.contracts import TaskCreated
from streams.client import TasksagePublisher
from tests.support.topics import read_topic

ROOT = Path(__file__).resolve().parents[2]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TASKS = 6


async def lines_from(
    process: asyncio.subprocess.Process, count: int, timeout_s: float, log: list[str]
) -> list[dict[str, object]]:
    """Up to `count` JSON lines the app printed; its other output goes to `log`."""
    assert process.stdout is not None
    out: list[dict[str, object]] = []
    async with asyncio.timeout(timeout_s):
        while len(out) < count:
            line = await process.stdout.readline()
            if not line:
                break
            # faust routes stdout through its logger: the JSON follows the log prefix.
            start = line.find(b'{"task_id"')
            if start >= 0:
                out.append(json.loads(line[start:]))
            else:
                log.append(line.decode(errors="replace"))
    return out


async def test_the_example_faust_app_acts_once_on_every_schedule(
    make_settings, worker_factory, tmp_path
) -> None:
    settings = make_settings()
    tasks = [
        TaskCreated(
            event_id=f"faust-e{n}", occurred_at=T0, task_id=f"FAUST-{n}", description=f"summarize report {n}"
        )
        for n in range(TASKS)
    ]
    async with worker_factory(settings):
        async with TasksagePublisher(settings) as publisher:
            for t in tasks:
                await publisher.publish_task(t, wait=False)
            await publisher.flush()
        published = await read_topic(settings, settings.topic_task_schedules, TASKS)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_")},
        "KAFKA_BOOTSTRAP_SERVERS": settings.kafka_bootstrap_servers or "",
        "TASKSAGE_TOPIC_TASK_SCHEDULES": settings.topic_task_schedules,
        "TASKSAGE_DOWNSTREAM_APP_ID": f"{settings.consumer_group}-downstream",
        "PYTHONPATH": str(ROOT),
    }
    app = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "streams.downstream.example", "worker", "-l", "warn",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    log: list[str] = []
    try:
        acted = await lines_from(app, TASKS, timeout_s=120, log=log)
        # Nothing more arrives: each schedule was acted on once.
        with contextlib.suppress(TimeoutError):
            acted += await lines_from(app, 1, timeout_s=3, log=log)
    finally:
        app.terminate()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(app.wait(), 30)
    expected = {}
    for record in published:
        doc = orjson.loads(record.value or b"")
        expected[doc["task_id"]] = (doc["agent"], doc["model"], doc["event_id"], len(doc["alternatives"]))
    got = {a["task_id"]: (a["agent"], a["model"], a["event_id"], a["alternatives"]) for a in acted}
    assert got == expected, "the app's log:\n" + "".join(log[-60:])
    assert len(acted) == TASKS
