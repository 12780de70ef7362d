"""Replays and duplicate events leave what tasksage learned exactly as one pass left it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import asyncpg

from processors.contracts import encode
from processors.demo_workload import SampleWorkload, strongest_arm
from processors.scheduling.types import Arm
from streams.runtime import Endpoints, open_runtime
from streams.worker.replay import replay
from tests.support.tables import differences, learned_state
from tests.support.topics import read_topic, send_raw, wait_consumed
from tests.support.waiting import eventually


async def test_replaying_twice_and_duplicate_events_change_nothing(
    make_settings, endpoints, worker_factory
) -> None:
    settings = make_settings()
    tasks_topic, results_topic, messages_topic = settings.input_topics.values()
    workload = SampleWorkload(seed=5)
    samples = workload.tasks(20)
    late = samples.pop()  # its results arrive before it does
    results = [
        workload.outcome(s, arm) for s in samples for arm in (strongest_arm(s), Arm("generalist", "small"))
    ]
    late_results = [
        workload.outcome(late, strongest_arm(late)),
        workload.outcome(late, Arm("coder", "medium")),
    ]
    messages = [workload.message(s) for s in samples[:8]]
    task_records = [(s.task.task_id.encode(), encode(s.task)) for s in samples]
    result_records = [(r.task_id.encode(), encode(r)) for r in results]
    message_records = [(m.message_id.encode(), encode(m)) for m in messages]
    bad_task = (b"X1", b'{"event_id": "bad-task", "task_id": "X1"}')
    bad_result = (b"X2", b"not json at all")

    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await send_raw(settings, results_topic, [(r.task_id.encode(), encode(r)) for r in late_results])
            await eventually(lambda: conn.fetchval("SELECT count(*) FROM held_results"), lambda n: n == 2)
            await send_raw(settings, tasks_topic, [*task_records, bad_task])
            await send_raw(settings, messages_topic, message_records)
            await send_raw(settings, results_topic, [*result_records, bad_result])
            await send_raw(settings, tasks_topic, [(late.task.task_id.encode(), encode(late.task))])
            sent = Counter({tasks_topic: 21, results_topic: 41, messages_topic: 8})
            await wait_consumed(conn, settings, sent)
            await eventually(lambda: conn.fetchval("SELECT count(*) FROM held_results"), lambda n: n == 0)
            one_pass = await learned_state(conn)
            middle = datetime.now(UTC)

            # The same events again (a producer retry, a re-sent batch): same event ids, same bytes.
            await send_raw(settings, tasks_topic, [*task_records[:5], bad_task])
            await send_raw(settings, results_topic, result_records[:10])
            await send_raw(settings, messages_topic, message_records[:3])
            sent.update({tasks_topic: 6, results_topic: 10, messages_topic: 3})
            await wait_consumed(conn, settings, sent)
            after_duplicates = await learned_state(conn)
            outputs_after_duplicates = await _output_counts(settings)
    finally:
        await conn.close()

    assert len(one_pass["executions"]) == len(results) + len(late_results)
    assert len(one_pass["tasks"]) == 20
    assert sum(r["attempts"] for r in one_pass["arm_stats"] if r["scope"] == "*") == 40
    assert one_pass["arm_profiles"], "profiles adapted"
    # Positions move on past the duplicates; nothing else may change.
    assert [d.split(":")[0] for d in differences(one_pass, after_duplicates)] == ["positions"]
    one_pass["positions"] = after_duplicates["positions"]
    assert outputs_after_duplicates == {"schedules": 20, "task dead letters": 1, "result dead letters": 1}

    runtime = await open_runtime(settings, Endpoints(endpoints.bootstrap, endpoints.dsn))
    try:
        topics = list(settings.input_topics.values())
        reports = [await replay(runtime, topics) for _ in range(2)]
        # A range (by time): only part of the log, equally idempotent.
        ranged = await replay(runtime, topics, since=middle)
        conn = await asyncpg.connect(endpoints.dsn)
        try:
            after_replays = await learned_state(conn)
        finally:
            await conn.close()
    finally:
        await runtime.close()

    for report in reports:
        assert report.records == sum(sent.values()), report
        assert report.processed == 0, report
        assert report.dead_lettered == 0, report
    # Exactly the 19 records sent after `middle`; partitions with nothing after it replay nothing.
    assert (ranged.records, ranged.processed, ranged.dead_lettered) == (6 + 10 + 3, 0, 0), ranged
    assert differences(one_pass, after_replays) == []
    assert await _output_counts(settings) == outputs_after_duplicates, "a replay publishes nothing again"


async def _output_counts(settings) -> dict[str, int]:
    topics = {
        "schedules": (settings.topic_task_schedules, 20),
        "task dead letters": (settings.dead_letter_topic(settings.topic_task_created), 1),
        "result dead letters": (settings.dead_letter_topic(settings.topic_execution_result), 1),
    }
    return {name: len(await read_topic(settings, topic, n)) for name, (topic, n) in topics.items()}
