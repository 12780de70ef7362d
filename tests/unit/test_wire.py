"""The decoding fast path (msgspec into the structs of processors/contracts/events.py) against
the JSON Schemas generated from the same structs:
it may refuse what the schema accepts (the slow path then decides), never accept what the
schema refuses, and both paths must build equal events."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastjsonschema import JsonSchemaValueException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from processors.contracts import codec
from processors.errors import InvalidEvent
from tests.contract.examples import GOLDEN_DIR

TIMES = [
    "2025-06-01T00:00:00+00:00",
    "2025-06-01T08:30:12.123456Z",
    "2025-06-01t08:30:12z",
    "2025-06-01T23:59:60Z",  # leap second: the schema admits it, Python cannot hold it
    "2025-06-01T08:30:12+0530",
    "2025-06-01T08:30:12",  # no offset
    "2025-06-01 08:30:12Z",
    "2025-13-01T00:00:00Z",
    "yesterday",
    "",
]
ODD = [None, True, 0, -1, 3.0, 3.5, 1e13, "", "x" * 201, [], {}, "\u0000"]


def strings(max_len: int) -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=8),
        st.sampled_from(["", "a", "x" * max_len, "x" * (max_len + 1), "é" * max_len, "é" * (max_len + 1)]),
    )


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(strategy, st.sampled_from(ODD))


def documents(
    fields: dict[str, st.SearchStrategy[Any]], required: set[str]
) -> st.SearchStrategy[dict[str, Any]]:
    @st.composite
    def build(draw: st.DrawFn) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        for name, strategy in fields.items():
            present = (name in required and draw(st.integers(0, 19)) > 0) or draw(st.booleans())
            if present:
                doc[name] = draw(maybe(strategy))
        if draw(st.integers(0, 9)) == 0:
            doc["unexpected"] = 1
        return doc

    return build()


TIME = st.sampled_from(TIMES)
COMMON = {"event_id": strings(200), "schema_version": st.sampled_from([1, 2, 1.0]), "occurred_at": TIME}
CASES = {
    "task-created": (
        "task-created",
        codec.decode_task_created,
        documents(
            {
                **COMMON,
                "task_id": strings(200),
                "description": strings(32000),
                "kind": strings(200),
                "priority": st.integers(-2, 102),
                "requirements": st.lists(strings(500), max_size=3),
                "dependencies": st.lists(strings(200), max_size=3),
                "context": st.dictionaries(st.text(max_size=3), st.integers(-(2**53), 2**53), max_size=2),
                "requested_agent": strings(200),
                "deadline": TIME,
            },
            {"event_id", "schema_version", "occurred_at", "task_id", "description"},
        ),
    ),
    "execution-result": (
        "execution-result",
        codec.decode_execution_result,
        documents(
            {
                **COMMON,
                "task_id": strings(200),
                "agent": strings(200),
                "model": strings(200),
                "success": st.booleans(),
                "finished_at": TIME,
                "duration_ms": st.one_of(st.integers(-1, 10**6), st.floats(-1, 1e13, allow_nan=False)),
                "cost_usd": st.one_of(st.integers(-1, 10), st.floats(-1, 1e10, allow_nan=False)),
                "error_message": strings(32000),
            },
            {
                "event_id",
                "schema_version",
                "occurred_at",
                "task_id",
                "agent",
                "model",
                "success",
                "finished_at",
            },
        ),
    ),
    "message-ingested": (
        "message-ingested",
        codec.decode_message_ingested,
        documents(
            {
                **COMMON,
                "message_id": strings(200),
                "source": strings(200),
                "author": strings(200),
                "content": strings(32000),
                "thread_id": strings(200),
                "task_id": strings(200),
            },
            {"event_id", "schema_version", "occurred_at", "message_id", "source", "author", "content"},
        ),
    ),
}


def _slow(decode: Any, payload: bytes, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setattr(codec, "_fast", lambda *_: None)
        try:
            return decode(payload)
        except InvalidEvent as exc:
            return type(exc)


@pytest.mark.parametrize("name", list(CASES))
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_fast_path_accepts_only_what_the_schema_accepts_and_builds_the_same_event(
    name: str, data: st.DataObject, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, decode, docs = CASES[name]
    payload = orjson.dumps(data.draw(docs))
    fast = codec._fast(name, payload, codec.DEFAULT_MAX_BYTES)
    if fast is None:
        return
    try:
        codec._validator(name)(orjson.loads(payload))
    except JsonSchemaValueException as exc:
        raise AssertionError(f"fast path accepted what the schema refuses: {payload!r}: {exc}") from None
    try:
        via_fast = decode(payload)
    except InvalidEvent as exc:
        via_fast = type(exc)
    assert via_fast == _slow(decode, payload, monkeypatch)


@pytest.mark.parametrize("name", list(CASES))
def test_ordinary_events_take_the_fast_path(name: str) -> None:
    payload = (GOLDEN_DIR / f"{name}.json").read_bytes()  # the contract's golden examples
    assert codec._fast(name, payload, codec.DEFAULT_MAX_BYTES) is not None


def test_oversized_and_nul_payloads_are_left_to_the_slow_path() -> None:
    payload = orjson.dumps(
        {"event_id": "e", "schema_version": 1, "occurred_at": TIMES[0], "message_id": "m",
         "source": "s", "author": "a", "content": "has \u0000 in it"}
    )  # fmt: skip
    assert codec._fast("message-ingested", payload, codec.DEFAULT_MAX_BYTES) is None
    assert codec._fast("message-ingested", payload, 10) is None
    with pytest.raises(InvalidEvent, match="NUL"):
        codec.decode_message_ingested(payload)


def test_forms_the_struct_reads_more_loosely_than_the_schema_go_the_slow_path() -> None:
    """msgspec reads a space between date and time, and a struct defaults schema_version: the
    schema refuses both, so the slow path must decide, with the schema's words."""
    golden = orjson.loads((GOLDEN_DIR / "execution-result.json").read_bytes())
    spaced = orjson.dumps({**golden, "finished_at": "2026-03-02 09:15:30Z"})
    unversioned = orjson.dumps({k: v for k, v in golden.items() if k != "schema_version"})
    for payload, words in [(spaced, "finished_at must be date-time"), (unversioned, "must contain")]:
        assert codec._fast("execution-result", payload, codec.DEFAULT_MAX_BYTES) is None
        with pytest.raises(InvalidEvent, match=words):
            codec.decode_execution_result(payload)
