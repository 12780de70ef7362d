"""A worker restarted after kill -9, with the default group timing, ends its dead predecessor's
group membership before joining (streams/worker/membership.py) instead of waiting for the
broker to time the dead member out, and goes on where it stopped."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from processors.contracts import TaskCreated, encode
from processors.postgres.pool import connect
from tests.support.processes import WorkerProcess, wait_for_log, worker_processes
from tests.support.topics import send_raw
from tests.support.waiting import eventually

pytestmark = pytest.mark.slow

ENDED = "ended the membership of this instance's previous process"


def task(n: int) -> bytes:
    return encode(
        TaskCreated(
            event_id=f"rejoin-e{n}",
            occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
            task_id=f"REJOIN-{n}",
            description=f"task number {n}",
        )
    )


async def test_a_restarted_worker_ends_its_killed_predecessors_membership(
    fault_settings, endpoints, tmp_path
) -> None:
    settings = fault_settings(session_timeout_ms=None, heartbeat_interval_ms=None)  # the defaults
    topic = settings.input_topics["task-created"]
    worker = WorkerProcess(settings, tmp_path / "logs")
    conn = await connect(endpoints.dsn)

    async def stored() -> set[str]:
        rows = await conn.fetch("SELECT task_id FROM tasks WHERE task_id LIKE 'REJOIN-%'")
        return {r["task_id"] for r in rows}

    try:
        with worker_processes(worker):
            worker.start()
            await wait_for_log(worker, "partitions assigned")
            await send_raw(settings, topic, [(str(n).encode(), task(n)) for n in range(10)])
            await eventually(stored, lambda s: len(s) == 10, timeout_s=60)
            members = await conn.fetch("SELECT instance_id, member_id FROM group_members")
            worker.kill()
            worker.start()
            await wait_for_log(worker, ENDED)
            await send_raw(settings, topic, [(str(n).encode(), task(n)) for n in range(10, 20)])
            await eventually(stored, lambda s: len(s) == 20, timeout_s=60)
            log = worker.log_text()
    finally:
        await conn.close()
    assert len(members) == 1
    [(instance, member)] = [(r["instance_id"], r["member_id"]) for r in members]
    ended = [line for line in log.splitlines() if ENDED in line]
    assert len(ended) == 1
    assert f"({instance}, member {member}): error code 0" in ended[0]
    assert re.search(rf"{re.escape(instance)}", ended[0])
