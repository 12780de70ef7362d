"""Bad input through the real broker and database: every kind of broken record lands on its
topic's dead-letter topic with Kafka Connect's error headers and its original bytes, the valid
records around it are processed, and the worker goes on."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson

from processors.pipeline import batch_steps
from tests.support.topics import read_topic, send_raw, wait_consumed
from tests.support.waiting import eventually

MAX_EVENT_BYTES = 4096
# Stands in for the real cap (about 0.9 MB, under what producers and brokers accept) so the test
# need not push megabytes through the shared broker.
DEAD_LETTER_CAP = 6000
NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC).isoformat()


def task_doc(event_id: str, task_id: str, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": event_id,
        "schema_version": 1,
        "occurred_at": NOW,
        "task_id": task_id,
        "description": f"answer customer question about retries ({task_id})",
        "kind": "qa",
    }
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not ...}


def raw(doc: dict[str, Any]) -> bytes:
    return orjson.dumps(doc)


# (label, value, exception class, words the reason must contain)
BAD_TASKS: list[tuple[str, bytes | None, str, str]] = [
    ("malformed JSON", b'{"event_id": "b1", "task_id": ', "InvalidEvent", "not valid UTF-8 JSON"),
    ("not an object", b'["task-created", "B2"]', "InvalidEvent", "must be a JSON object"),
    (
        "unknown field (wrong schema)",
        raw(task_doc("b3", "B3", assignee="ana")),
        "InvalidEvent",
        "does not match its schema",
    ),
    (
        "unknown schema_version",
        raw(task_doc("b4", "B4", schema_version=2)),
        "UnsupportedSchemaVersion",
        "schema_version 2 is not supported",
    ),
    ("missing field", raw(task_doc("b5", "B5", description=...)), "InvalidEvent", "description"),
    ("wrong type", raw(task_doc("b6", "B6", priority="high")), "InvalidEvent", "priority must be integer"),
    (
        "oversized payload",
        raw(task_doc("b7", "B7", description="x" * MAX_EVENT_BYTES)),
        "PayloadTooLarge",
        f"over the {MAX_EVENT_BYTES}-byte limit",
    ),
    ("escaped NUL", raw(task_doc("b8", "B8", description="bad\x00text")), "InvalidEvent", "NUL character"),
    (
        "raw NUL byte",
        raw(task_doc("b9", "B9")).replace(b"(B9)", b"(B9\x00)"),
        "InvalidEvent",
        "control character",
    ),
    (
        "invalid UTF-8",
        raw(task_doc("b10", "B10")).replace(b"(B10)", b"(B10\xff\xfe)"),
        "InvalidEvent",
        "not valid UTF-8",
    ),
    ("tombstone", None, "InvalidEvent", "tombstone"),
    # Passes the schema but cannot be stored (a time PostgreSQL cannot represent in UTC): fails
    # inside the batch transaction, so only bisection can find it.
    (
        "unstorable timestamp",
        raw(task_doc("b12", "B12", occurred_at="0001-01-01T00:00:00+01:00")),
        "",
        "",
    ),
    # Bigger than a producer may send: the dead letter keeps the first DEAD_LETTER_CAP bytes and
    # says how big the record was (checked below).
    (
        "oversized beyond the producer limit",
        raw(task_doc("b13", "B13", description="y" * 3 * DEAD_LETTER_CAP)),
        "PayloadTooLarge",
        f"over the {MAX_EVENT_BYTES}-byte limit",
    ),
    # Two different broken records that share an event_id are two dead letters, not one.
    ("same event_id, other payload", raw(task_doc("b6", "B6b", priority=-1)), "InvalidEvent", "priority"),
]


async def test_every_kind_of_bad_record_is_dead_lettered_and_the_worker_goes_on(
    make_settings, endpoints, worker_factory, monkeypatch
) -> None:
    # The real cap leaves room for key and headers under the producer's default 1 MiB request.
    assert batch_steps.DEAD_LETTER_MAX_VALUE_BYTES <= 1_048_576 - 100_000
    monkeypatch.setattr(batch_steps, "DEAD_LETTER_MAX_VALUE_BYTES", DEAD_LETTER_CAP)
    settings = make_settings(max_event_bytes=MAX_EVENT_BYTES)
    topic = settings.topic_task_created
    key = b"same-partition"  # one partition: bad records sit between good ones in one batch
    good = [raw(task_doc(f"g{i}", f"G{i}")) for i in range(3)]
    sequence: list[tuple[bytes | None, bytes | None]] = [(key, good[0])]
    for i, (_, value, _, _) in enumerate(BAD_TASKS):
        sequence.append((key, value))
        if i == len(BAD_TASKS) // 2:
            sequence.append((key, good[1]))
    sequence.append((key, good[2]))
    bad_result = b'{"event_id": "r1", "task_id": "G0", "agent": "generalist", "success": "yes"}'
    bad_message = raw({"event_id": "m1", "schema_version": 1, "occurred_at": NOW, "message_id": "M1"})

    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            placed = await send_raw(settings, topic, sequence)
            await send_raw(settings, settings.topic_execution_result, [(b"G0", bad_result)])
            await send_raw(settings, settings.topic_message_ingested, [(b"M1", bad_message)])
            dead = await read_topic(settings, settings.dead_letter_topic(topic), len(BAD_TASKS))
            await wait_consumed(conn, settings, {topic: len(sequence)})
            tasks = await conn.fetch("SELECT task_id FROM tasks ORDER BY task_id")
            # The worker is still consuming: a valid event after all of that is processed.
            await send_raw(settings, topic, [(b"G9", raw(task_doc("g9", "G9")))])
            await eventually(
                lambda: conn.fetchval("SELECT count(*) FROM predictions WHERE task_id = 'G9'"),
                lambda n: n == 1,
            )
            other_dead = [
                await read_topic(settings, settings.dead_letter_topic(t), 1)
                for t in (settings.topic_execution_result, settings.topic_message_ingested)
            ]
    finally:
        await conn.close()

    assert [r["task_id"] for r in tasks] == ["G0", "G1", "G2"], (
        "valid records around the bad ones are processed"
    )
    assert len(dead) == len(BAD_TASKS), [r.headers.get("__connect.errors.offset") for r in dead]
    offsets = {offset: value for (_, offset), (_, value) in zip(placed, sequence, strict=True)}
    partition = placed[0][0]
    by_offset = {int(r.headers["__connect.errors.offset"]): r for r in dead}
    for label, value, error_class, reason in BAD_TASKS:
        offset = next(o for o, v in offsets.items() if v is value)
        record = by_offset.get(offset)
        assert record is not None, f"{label}: no dead letter for offset {offset}"
        h = record.headers
        assert h["__connect.errors.topic"] == topic.encode(), label
        assert h["__connect.errors.partition"] == str(partition).encode(), label
        assert h["__connect.errors.offset"] == str(offset).encode(), label
        assert record.key == key, label
        if value is not None and len(value) > DEAD_LETTER_CAP:
            assert record.value == value[:DEAD_LETTER_CAP], label
            assert h["tasksage.truncated_from_bytes"] == str(len(value)).encode(), label
        else:
            assert record.value == (value if value is not None else b""), f"{label}: original bytes"
            assert "tasksage.truncated_from_bytes" not in h, label
        message = h["__connect.errors.exception.message"].decode()
        assert message, label
        if error_class:
            assert h["__connect.errors.exception.class.name"] == error_class.encode(), (label, h)
            assert reason in message, (label, message)
        else:
            assert h["__connect.errors.exception.class.name"], label

    for source, records in zip(
        (settings.topic_execution_result, settings.topic_message_ingested), other_dead, strict=True
    ):
        assert len(records) == 1
        assert records[0].headers["__connect.errors.topic"] == source.encode()
        assert records[0].headers["__connect.errors.exception.class.name"] == b"InvalidEvent"
        assert records[0].value in (bad_result, bad_message)
