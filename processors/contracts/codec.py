"""Bytes <-> typed events.

Decoding has two paths to one result. The fast path decodes the bytes straight into the event
struct (events.py), whose constraints the published schema was generated from. Whatever it
refuses, and the few forms it reads more loosely than the schema (see `_fast`), go the slow
path: orjson, then the schema validator, which decides and words the error, then the struct.
tests/unit/test_wire.py checks on generated documents that the fast path never accepts what the
schema refuses and that both paths build equal events."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import fastjsonschema
import msgspec
import orjson

from processors.contracts import limits
from processors.contracts.events import (
    EVENTS,
    Event,
    ExecutionResult,
    InsightsSnapshot,
    MessageDuplicate,
    MessageIngested,
    ScheduleSnapshot,
    TaskCreated,
    TaskSchedule,
)
from processors.errors import InvalidEvent, PayloadTooLarge, UnsupportedSchemaVersion

SCHEMA_VERSION = 1
SCHEMA_NAMES: tuple[str, ...] = tuple(EVENTS)
DEFAULT_MAX_BYTES = 1_000_000
_NUL_ESCAPE = b"\\u0000"


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The published JSON Schema for one event type."""
    if name not in SCHEMA_NAMES:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(SCHEMA_NAMES)}")
    text = resources.files("processors.contracts").joinpath(f"schemas/{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Callable[[Any], Any]:
    compiled: Callable[[Any], Any] = fastjsonschema.compile(load_schema(name))
    return compiled


def _parse(payload: bytes, name: str, max_bytes: int) -> dict[str, Any]:
    if len(payload) > max_bytes:
        raise PayloadTooLarge(
            f"{name} payload is {len(payload)} bytes, over the {max_bytes}-byte limit",
            hint="raise TASKSAGE_MAX_EVENT_BYTES or send smaller events",
        )
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(f"{name} payload is not valid UTF-8 JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InvalidEvent(f"{name} payload must be a JSON object, got {type(doc).__name__}")
    version = doc.get("schema_version")
    if isinstance(version, int) and not isinstance(version, bool) and version != SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(
            f"{name} schema_version {version} is not supported (this worker reads {SCHEMA_VERSION})",
            hint="upgrade the worker or publish version 1 events",
        )
    try:
        _validator(name)(doc)
    except fastjsonschema.JsonSchemaValueException as exc:
        # A "not" rule's own words say nothing ("must NOT match a disallowed definition"): the
        # property's description says why.
        why = exc.definition.get("description") if exc.rule == "not" else None
        raise InvalidEvent(
            f"{name} does not match its schema: {exc.message}" + (f" ({why})" if why else "")
        ) from None
    # PostgreSQL text cannot hold NUL; reject here with a clear reason instead of failing the batch.
    if _NUL_ESCAPE in payload:
        raise InvalidEvent(f"{name} contains a NUL character (\\u0000), which text fields cannot store")
    return doc


# A date and a time with a space between them: msgspec reads it (as RFC 3339 allows applications
# to), the schema's date-time does not. Rare in real text, so every payload holding one may take
# the slow path. Written to start with its literal space, which the regex engine scans for
# quickly: 0.2-0.5 us a payload where the same pattern starting with a digit took 2-3 us.
_SPACED_TIME = re.compile(rb" \d\d:(?<=\d-\d\d \d\d:)")
_VERSION_KEY = b'"schema_version"'
_DECODERS = {name: msgspec.json.Decoder(event_type) for name, event_type in EVENTS.items()}


def _fast(name: str, payload: bytes, max_bytes: int) -> Any:
    """The payload decoded by msgspec, or None when the slow path must decide: refused, too big,
    holding a NUL, or in one of the forms the struct reads more loosely than the schema (a
    spaced date-time; no `schema_version`, which a struct built in code may leave out)."""
    if (
        len(payload) > max_bytes
        or _NUL_ESCAPE in payload
        or _VERSION_KEY not in payload
        or _SPACED_TIME.search(payload) is not None
    ):
        return None
    try:
        return _DECODERS[name].decode(payload)
    except msgspec.DecodeError:  # ValidationError included
        return None


def decode(name: str, payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
    """The typed event of schema `name` from its bytes; InvalidEvent (or a subclass) with the
    reason when the bytes are not a valid event."""
    limits.check(payload, name, max_bytes)  # size and nesting, before any parser runs
    event = _fast(name, payload, max_bytes)
    if event is not None:
        return event
    doc = _parse(payload, name, max_bytes)
    doc["schema_version"] = SCHEMA_VERSION  # const 1 also admits 1.0, which the struct's Literal does not
    try:
        # Not strict: the schema's integer also admits 3.0.
        return msgspec.convert(doc, type=EVENTS[name], strict=False)
    except msgspec.ValidationError as exc:
        # The schema admits a few RFC 3339 forms Python cannot represent (leap second 60): bad
        # data with a reason, not a crash in the batch.
        raise InvalidEvent(f"{name} passed its schema but cannot be read: {exc}") from None


E = TypeVar("E", bound=Event)
_NAMES: dict[type[Event], str] = {event_type: name for name, event_type in EVENTS.items()}


def decode_as(event_type: type[E], payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> E:
    """`decode`, typed: the event of that struct type from its bytes."""
    event: E = decode(_NAMES[event_type], payload, max_bytes)
    return event


def decode_task_created(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> TaskCreated:
    return decode_as(TaskCreated, payload, max_bytes)


def decode_execution_result(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ExecutionResult:
    return decode_as(ExecutionResult, payload, max_bytes)


def decode_message_ingested(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> MessageIngested:
    return decode_as(MessageIngested, payload, max_bytes)


def decode_task_schedule(payload: bytes) -> TaskSchedule:
    """Typed schedule record for downstream consumers (validated like an input)."""
    return decode_as(TaskSchedule, payload)


def decode_schedule_snapshot(payload: bytes) -> ScheduleSnapshot:
    return decode_as(ScheduleSnapshot, payload)


def decode_message_duplicate(payload: bytes) -> MessageDuplicate:
    return decode_as(MessageDuplicate, payload)


def decode_insights_snapshot(payload: bytes) -> InsightsSnapshot:
    return decode_as(InsightsSnapshot, payload)


def _default(value: Any) -> Any:
    if isinstance(value, msgspec.Struct):
        # Datetimes left to orjson, which writes the offset as +00:00 (msgspec would write Z);
        # UNSET fields are left out.
        return msgspec.to_builtins(value, builtin_types=(datetime,))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"cannot encode {type(value).__name__}")


def to_document(event: Any) -> dict[str, Any]:
    """A plain JSON-ready dict of any event record (datetimes as RFC 3339 strings)."""
    doc: dict[str, Any] = orjson.loads(encode(event))
    return doc


def encode(event: Any) -> bytes:
    """JSON bytes of any event record, field order as declared."""
    return orjson.dumps(event, default=_default)


def validate_output(name: str, payload: bytes) -> None:
    """Check an outgoing record against its schema (used by tests and `tasksage publish`)."""
    _validator(name)(orjson.loads(payload))
