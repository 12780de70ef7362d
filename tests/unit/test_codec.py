"""The codec: bytes in are validated against the published schemas, every failure is a typed,
non-retriable InvalidEvent with a reason; records out encode as plain RFC 3339 JSON."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import fastjsonschema
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.contracts import (
    ExecutionResult,
    MessageIngested,
    SimilarTask,
    TaskCreated,
    decode_execution_result,
    decode_message_ingested,
    decode_task_created,
    encode,
    load_schema,
    validate_output,
)
from processors.contracts.codec import to_document
from processors.contracts.inputs import DECODERS
from processors.errors import InvalidEvent, PayloadTooLarge, UnsupportedSchemaVersion
from processors.failures import classify

NOW = "2026-03-02T09:15:00+00:00"


def task_doc(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "event_id": "e-1",
        "schema_version": 1,
        "occurred_at": NOW,
        "task_id": "T1",
        "description": "fix typo in billing error message",
    }
    doc.update(changes)
    return doc


def decode(doc: dict[str, Any], max_bytes: int = 1_000_000) -> TaskCreated:
    return decode_task_created(orjson.dumps(doc), max_bytes)


def test_a_minimal_task_gets_the_documented_defaults() -> None:
    task = decode(task_doc())
    assert task == TaskCreated(
        event_id="e-1",
        occurred_at=datetime(2026, 3, 2, 9, 15, tzinfo=UTC),
        task_id="T1",
        description="fix typo in billing error message",
    )
    assert (task.kind, task.priority, task.requirements, task.dependencies, task.context) == (
        None,
        0,
        (),
        (),
        {},
    )


def test_a_complete_task_keeps_every_field() -> None:
    task = decode(
        task_doc(
            kind="code",
            priority=7,
            requirements=["python"],
            dependencies=["T0"],
            context={"repo": "acme/billing", "n": [1, 2]},
            requested_agent="coder",
            deadline="2026-03-03T00:00:00Z",
        )
    )
    assert task.kind == "code" and task.priority == 7 and task.requested_agent == "coder"
    assert task.requirements == ("python",) and task.dependencies == ("T0",)
    assert task.context == {"repo": "acme/billing", "n": [1, 2]}
    assert task.deadline == datetime(2026, 3, 3, tzinfo=UTC)


def test_an_integral_float_priority_becomes_an_int() -> None:
    # JSON Schema's "integer" admits 3.0; PostgreSQL's integer column does not take a float.
    task = decode(task_doc(priority=3.0))
    assert task.priority == 3 and type(task.priority) is int


def test_times_keep_their_offset_and_fraction() -> None:
    task = decode(task_doc(occurred_at="2026-03-02T11:15:00.123456+02:00"))
    assert task.occurred_at.utcoffset() == timedelta(hours=2)
    assert task.occurred_at == datetime(2026, 3, 2, 9, 15, 0, 123456, tzinfo=UTC)


def test_lower_case_t_and_z_are_read_as_rfc_3339_allows() -> None:
    task = decode(task_doc(deadline="2026-03-02t09:15:00z"))
    assert task.deadline == datetime(2026, 3, 2, 9, 15, tzinfo=UTC)


def test_decoders_for_results_and_messages() -> None:
    result = decode_execution_result(
        orjson.dumps(
            {
                "event_id": "r-1",
                "schema_version": 1,
                "occurred_at": NOW,
                "task_id": "T1",
                "agent": "coder",
                "model": "small",
                "success": False,
                "finished_at": NOW,
                "duration_ms": 1500,  # an integer in JSON, a float in the record
                "error_message": "tests failed",
            }
        )
    )
    assert result.duration_ms == 1500.0 and isinstance(result.duration_ms, float)
    assert result.cost_usd is None and result.success is False
    message = decode_message_ingested(
        orjson.dumps(
            {
                "event_id": "m-1",
                "schema_version": 1,
                "occurred_at": NOW,
                "message_id": "M1",
                "source": "slack",
                "author": "ana",
                "content": "can someone fix the typo?",
                "thread_id": "th-1",
            }
        )
    )
    assert message.thread_id == "th-1" and message.task_id is None


@pytest.mark.parametrize(
    ("payload", "error", "reason"),
    [
        (b'{"event_id": "e-1", ', InvalidEvent, "not valid UTF-8 JSON"),
        (b"", InvalidEvent, "not valid UTF-8 JSON"),
        (b'"just a string"', InvalidEvent, "must be a JSON object, got str"),
        (b"[1, 2]", InvalidEvent, "must be a JSON object, got list"),
        (orjson.dumps(task_doc(description=None)), InvalidEvent, "description must be string"),
        (orjson.dumps({k: v for k, v in task_doc().items() if k != "task_id"}), InvalidEvent, "task_id"),
        (orjson.dumps(task_doc(priority="high")), InvalidEvent, "priority must be integer"),
        (orjson.dumps(task_doc(priority=101)), InvalidEvent, "priority must be smaller than or equal to 100"),
        (orjson.dumps(task_doc(assignee="ana")), InvalidEvent, "must not contain {'assignee'}"),
        (
            orjson.dumps(task_doc(description="")),
            InvalidEvent,
            "description must be longer than or equal to 1",
        ),
        (
            orjson.dumps(task_doc(schema_version=2)),
            UnsupportedSchemaVersion,
            "schema_version 2 is not supported",
        ),
        (orjson.dumps(task_doc(schema_version="1")), InvalidEvent, "schema_version must be integer"),
        (orjson.dumps(task_doc(schema_version=True)), InvalidEvent, "schema_version must be integer"),
        (
            orjson.dumps(task_doc(occurred_at="2026-03-02 09:15")),
            InvalidEvent,
            "occurred_at must be date-time",
        ),
        (orjson.dumps(task_doc(occurred_at="2026-03-02T09:15:00")), InvalidEvent, "must be date-time"),
        (orjson.dumps(task_doc(occurred_at="2026-06-30T23:59:60Z")), InvalidEvent, "cannot be read"),
        (orjson.dumps(task_doc(description="a\x00b")), InvalidEvent, "NUL character"),
        (orjson.dumps(task_doc(context={"k\x00": 1})), InvalidEvent, "NUL character"),
        (orjson.dumps(task_doc()).replace(b"billing", b"bill\x00ing"), InvalidEvent, "control character"),
        (orjson.dumps(task_doc()).replace(b"billing", b"bill\xffing"), InvalidEvent, "not valid UTF-8"),
    ],
)
def test_bad_payloads_are_invalid_events_with_a_reason(
    payload: bytes, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error) as caught:
        decode_task_created(payload)
    assert type(caught.value) is error
    assert reason in str(caught.value)
    assert str(caught.value).startswith("task-created"), "the reason names the event type"
    verdict = classify(caught.value)
    assert verdict.retriable is False, "bad data is dead-lettered, never retried"


def test_the_size_limit_is_inclusive_and_checked_before_parsing() -> None:
    payload = orjson.dumps(task_doc())
    assert decode_task_created(payload, len(payload)).task_id == "T1"
    with pytest.raises(
        PayloadTooLarge, match=f"{len(payload)} bytes, over the {len(payload) - 1}-byte limit"
    ):
        decode_task_created(payload, len(payload) - 1)
    with pytest.raises(PayloadTooLarge):
        decode_task_created(b"{" * 100, 50)  # not even parsed: a huge broken record costs nothing


def test_every_input_stream_has_a_decoder() -> None:
    assert set(DECODERS) == {"task-created", "execution-result", "message-ingested"}


def test_encode_writes_rfc3339_times_lists_and_nested_records() -> None:
    event = TaskCreated(
        event_id="e-1",
        occurred_at=datetime(2026, 3, 2, 11, 15, tzinfo=timezone(timedelta(hours=2))),
        task_id="T1",
        description="d",
        requirements=("a", "b"),
        deadline=None,
    )
    doc = orjson.loads(encode(event))
    assert list(doc) == list(TaskCreated.__struct_fields__), "fields in declared order"
    assert doc["occurred_at"] == "2026-03-02T11:15:00+02:00"
    assert doc["requirements"] == ["a", "b"] and doc["deadline"] is None and doc["schema_version"] == 1
    assert orjson.loads(encode([SimilarTask("T0", 0.5)])) == [{"task_id": "T0", "similarity": 0.5}]
    assert to_document(event) == doc
    with pytest.raises(TypeError, match="not JSON serializable"):
        encode(object())


def test_validate_output_rejects_what_the_schema_forbids() -> None:
    result = ExecutionResult(
        event_id="r-1",
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
        task_id="T1",
        agent="coder",
        model="small",
        success=True,
        finished_at=datetime(2026, 3, 2, tzinfo=UTC),
    )
    validate_output("execution-result", encode(result))
    bad = orjson.loads(encode(result)) | {"duration_ms": -1}
    with pytest.raises(fastjsonschema.JsonSchemaValueException, match="duration_ms"):
        validate_output("execution-result", orjson.dumps(bad))
    with pytest.raises(KeyError, match="unknown schema"):
        load_schema("no-such-schema")


_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
    min_size=1,
    max_size=200,
)


@given(
    description=_TEXT,
    kind=st.none() | _TEXT,
    priority=st.integers(0, 100),
    requirements=st.lists(_TEXT, max_size=5).map(tuple),
    minutes=st.integers(-(10**6), 10**6),
)
def test_any_valid_task_survives_encode_then_decode(
    description: str, kind: str | None, priority: int, requirements: tuple[str, ...], minutes: int
) -> None:
    event = TaskCreated(
        event_id="e-1",
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC) + timedelta(minutes=minutes),
        task_id="T1",
        description=description,
        kind=kind,
        priority=priority,
        requirements=requirements,
    )
    assert decode_task_created(encode(event)) == event


@given(content=_TEXT, thread=st.none() | st.text(min_size=1, max_size=20).filter(lambda t: "\x00" not in t))
def test_any_valid_message_survives_encode_then_decode(content: str, thread: str | None) -> None:
    try:
        thread.encode("utf-8") if thread else None
    except UnicodeEncodeError:
        return  # lone surrogates cannot be sent as UTF-8 at all
    event = MessageIngested(
        event_id="m-1",
        occurred_at=datetime(2026, 3, 2, tzinfo=UTC),
        message_id="M1",
        source="slack",
        author="ana",
        content=content,
        thread_id=thread,
    )
    assert decode_message_ingested(encode(event)) == event


def test_the_reserved_kind_star_is_refused_with_the_reason() -> None:
    with pytest.raises(InvalidEvent, match=r'data\.kind must NOT match .*"\*" is reserved'):
        decode(task_doc(kind="*"))
    assert decode(task_doc(kind="**")).kind == "**"
    assert decode(task_doc(kind="*code")).kind == "*code"
