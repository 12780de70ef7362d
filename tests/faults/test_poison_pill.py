"""A record that kills the worker process (no exception to catch: os._exit, as a parser's C code
might) stops it twice at most: the third run dead-letters it as a poison pill with the reason,
and the records behind it are processed."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from processors.contracts import TaskCreated, encode
from tests.support import crashing_worker
from tests.support.processes import WorkerProcess, worker_processes
from tests.support.topics import read_topic, send_raw
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

KEY = b"one-partition"  # every record on the same partition: the pill blocks the ones behind it


def task(n: int, mark: bytes = b"") -> bytes:
    return encode(
        TaskCreated(
            event_id=f"pill-e{n}",
            occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
            task_id=f"PILL-{n}",
            description=f"task number {n} {mark.decode()}".strip(),
        )
    )


async def exits(worker: WorkerProcess, timeout_s: float) -> int:
    return await asyncio.to_thread(worker.wait, timeout_s)


async def test_a_record_that_kills_the_worker_twice_is_dead_lettered_on_the_third_start(
    fault_settings, endpoints, tmp_path
) -> None:
    settings = fault_settings(poison_pill_after=2)
    topic = settings.input_topics["task-created"]
    command = [sys.executable, str(Path(crashing_worker.__file__))]
    worker = WorkerProcess(settings, tmp_path / "logs", command=command)
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        with worker_processes(worker):
            worker.start()
            await send_raw(settings, topic, [(KEY, task(n)) for n in range(10)])
            await eventually(lambda: _tasks(conn), lambda n: n == 10, timeout_s=120)
            pill = task(10, crashing_worker.MARK)
            [(partition, offset)] = await send_raw(settings, topic, [(KEY, pill)])
            await send_raw(settings, topic, [(KEY, task(n)) for n in range(11, 31)])
            codes = [await exits(worker, 120)]
            worker.start()
            codes.append(await exits(worker, 120))
            worker.start()
            await eventually(lambda: _tasks(conn), lambda n: n == 30, timeout_s=120)
            letters = await read_topic(settings, settings.dead_letter_topic(topic), 1)
            still_running = worker.alive
            log = worker.log_text()
        stored = {r["task_id"] for r in await conn.fetch("SELECT task_id FROM tasks")}
    finally:
        await conn.close()
    assert codes == [crashing_worker.EXIT_CODE] * 2
    assert still_running and worker.starts == 3
    assert stored == {f"PILL-{n}" for n in range(31) if n != 10}
    assert [r.value for r in letters] == [pill]
    headers = letters[0].headers
    assert (headers["__connect.errors.partition"], headers["__connect.errors.offset"]) == (
        str(partition).encode(),
        str(offset).encode(),
    )
    assert headers["__connect.errors.exception.class.name"] == b"PoisonPill"
    reason = headers["__connect.errors.exception.message"].decode()
    assert reason.startswith(
        f"poison pill: crashed the worker 2 times in a row at {topic}[{partition}] offset {offset}"
    )
    assert log.count("dying on a marked record") == 2


async def _tasks(conn: asyncpg.Connection) -> int:
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tasks WHERE task_id LIKE 'PILL-%'"))
    except asyncpg.UndefinedTableError:
        return 0
