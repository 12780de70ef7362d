"""Size and nesting bounds on raw input events (processors/contracts/limits.py): any depth, in any
field of any input event, is an InvalidEvent with a reason, never a parser's crash."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.contracts.inputs import DECODERS
from processors.contracts.limits import MAX_DEPTH, check, nesting_depth
from processors.errors import InvalidEvent, PayloadTooLarge

OCCURRED = "2026-03-01T08:00:00Z"
VALID: dict[str, dict[str, Any]] = {
    "task-created": {
        "event_id": "e",
        "schema_version": 1,
        "occurred_at": OCCURRED,
        "task_id": "T",
        "description": "d",
    },
    "execution-result": {
        "event_id": "e",
        "schema_version": 1,
        "occurred_at": OCCURRED,
        "task_id": "T",
        "agent": "a",
        "model": "m",
        "success": True,
        "finished_at": OCCURRED,
    },
    "message-ingested": {
        "event_id": "e",
        "schema_version": 1,
        "occurred_at": OCCURRED,
        "message_id": "M",
        "source": "s",
        "author": "u",
        "content": "c",
    },
}
# Free-form or list fields, where a schema cannot refuse depth, and one unknown field per topic.
FIELDS = {
    "task-created": ["context", "requirements", "dependencies", "description", "extra"],
    "execution-result": ["error_message", "cost_usd", "extra"],
    "message-ingested": ["content", "thread_id", "extra"],
}
CASES = [(name, field) for name, fields in FIELDS.items() for field in fields]


def nested(depth: int, leaf: bytes = b"1") -> bytes:
    """`depth` objects and arrays nested alternately around `leaf`."""
    opening = [b'{"a":' if level % 2 else b"[" for level in range(depth)]
    closing = [b"}" if level % 2 else b"]" for level in range(depth)]
    return b"".join(reversed(opening)) + leaf + b"".join(closing)


def with_field(name: str, field: str, value: bytes) -> bytes:
    doc = orjson.dumps(VALID[name])
    return doc[:-1] + b',"' + field.encode() + b'":' + value + b"}"


@pytest.mark.parametrize(("name", "field"), CASES)
@pytest.mark.parametrize("depth", [MAX_DEPTH, 1000, 100_000])
def test_deep_values_in_any_field_are_invalid_events_not_crashes(name: str, field: str, depth: int) -> None:
    payload = with_field(name, field, nested(depth))
    with pytest.raises(InvalidEvent, match="nesting too deep"):
        DECODERS[name](payload, 10_000_000)


def test_the_deepest_context_allowed_is_decoded() -> None:
    # The event is level 1, so its context may nest MAX_DEPTH - 1 levels.
    context = b'{"a":' * (MAX_DEPTH - 1) + b"1" + b"}" * (MAX_DEPTH - 1)
    event = DECODERS["task-created"](with_field("task-created", "context", context), 1_000_000)
    depth, node = 0, event.context
    while isinstance(node, dict):
        depth, node = depth + 1, node["a"]
    assert depth == MAX_DEPTH - 1
    too_deep = b'{"a":' * MAX_DEPTH + b"1" + b"}" * MAX_DEPTH
    with pytest.raises(InvalidEvent, match="nesting too deep"):
        DECODERS["task-created"](with_field("task-created", "context", too_deep), 1_000_000)


def test_brackets_inside_strings_do_not_count() -> None:
    text = orjson.dumps({"context": {"note": "[" * 5000 + '\\"{{' + "}" * 300}})
    assert nesting_depth(text) == 2
    check(text, "task-created", 1_000_000)


def test_wide_values_are_not_deep() -> None:
    wide = orjson.dumps({"context": {f"k{i}": [[{"x": [i]}]] for i in range(20_000)}})
    assert nesting_depth(wide) == 6
    check(wide, "task-created", 10_000_000)


def test_size_is_checked_first() -> None:
    with pytest.raises(PayloadTooLarge, match="over the 10-byte limit"):
        check(b"[" * 11, "task-created", 10)


@given(
    st.recursive(
        st.none() | st.integers(-(2**63), 2**63 - 1) | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_the_scanner_agrees_with_the_document(value: Any) -> None:
    def depth(v: Any) -> int:
        if isinstance(v, list):
            return 1 + max(map(depth, v), default=0)
        if isinstance(v, dict):
            return 1 + max(map(depth, v.values()), default=0)
        return 0

    assert nesting_depth(orjson.dumps(value)) == depth(value)
