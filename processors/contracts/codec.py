"""Bytes <-> typed events. Input is validated against the shipped JSON Schemas, compiled once."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any, TypeVar

import fastjsonschema
import msgspec
import orjson

from processors.contracts import limits, wire
from processors.contracts.events import (
    AccuracyWindow,
    ArmAlternative,
    ArmUsage,
    BlockedSnapshotEntry,
    DependencyIssue,
    DependencySnapshot,
    ExecutionResult,
    FailureExample,
    FailurePattern,
    GapReport,
    InsightsSnapshot,
    MessageDuplicate,
    MessageIngested,
    ScheduleSnapshot,
    SimilarTask,
    SnapshotEntry,
    TaskCreated,
    TaskSchedule,
    UnsatisfiableTaskSchedule,
)
from processors.errors import InvalidEvent, PayloadTooLarge, UnsupportedSchemaVersion

SCHEMA_VERSION = 1
W = TypeVar("W")
E = TypeVar("E")
SCHEMA_NAMES = (
    "task-created",
    "execution-result",
    "message-ingested",
    "task-schedule",
    "schedule-snapshot",
    "message-duplicate",
    "insights-snapshot",
)
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


def _time(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"time {value!r} cannot be read: {exc}") from None


def _unreadable(name: str, exc: ValueError) -> InvalidEvent:
    """The schema's date-time pattern admits a few RFC 3339 forms Python cannot represent
    (leap second 60, lower-case 't'/'z'): bad data with a reason, not a crash in the batch.
    (A try block, not a context manager: this runs for every event, and the manager cost more
    than the schema validation.)"""
    return InvalidEvent(f"{name}: {exc}")


def _opt_time(value: str | None) -> datetime | None:
    return None if value is None else _time(value)


def _fast(decoder: msgspec.json.Decoder[W], payload: bytes, max_bytes: int) -> W | None:
    """The payload decoded by the fast path (processors/contracts/wire.py), or None when it is
    refused there: the slow path then decides, with the schema validator's words."""
    if len(payload) > max_bytes or _NUL_ESCAPE in payload:
        return None
    try:
        return decoder.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError):
        return None


def _decode(
    decoder: msgspec.json.Decoder[W],
    wire_type: type[W],
    payload: bytes,
    name: str,
    max_bytes: int,
    build: Callable[[W], E],
) -> E:
    """The event built from its wire struct. The struct comes from the fast path, or else from
    the slow path, which validates against the schema (raising its error) and converts what it
    accepted. A value the schema admits but the event cannot hold (a date) is an InvalidEvent."""
    limits.check(payload, name, max_bytes)  # size and nesting, before any parser runs
    w = _fast(decoder, payload, max_bytes)
    if w is None:
        doc = _parse(payload, name, max_bytes)
        doc["schema_version"] = SCHEMA_VERSION  # const 1 also admits 1.0, which the struct's Literal does not
        try:
            # Not strict: the schema's integer also admits 3.0.
            w = msgspec.convert(doc, type=wire_type, strict=False)
        except msgspec.ValidationError as exc:  # the schema accepted it: say so rather than crash the batch
            raise InvalidEvent(f"{name} passed its schema but cannot be read: {exc}") from None
    try:
        return build(w)
    except ValueError as exc:
        raise _unreadable(name, exc) from None


def _task_created(w: wire.TaskCreatedWire) -> TaskCreated:
    return TaskCreated(
        event_id=w.event_id,
        occurred_at=_time(w.occurred_at),
        task_id=w.task_id,
        description=w.description,
        kind=w.kind,
        priority=w.priority,
        requirements=tuple(w.requirements),
        dependencies=tuple(w.dependencies),
        context=w.context,
        requested_agent=w.requested_agent,
        deadline=_opt_time(w.deadline),
    )


def _execution_result(w: wire.ExecutionResultWire) -> ExecutionResult:
    return ExecutionResult(
        event_id=w.event_id,
        occurred_at=_time(w.occurred_at),
        task_id=w.task_id,
        agent=w.agent,
        model=w.model,
        success=w.success,
        finished_at=_time(w.finished_at),
        duration_ms=w.duration_ms,
        cost_usd=w.cost_usd,
        error_message=w.error_message,
    )


def _message_ingested(w: wire.MessageIngestedWire) -> MessageIngested:
    return MessageIngested(
        event_id=w.event_id,
        occurred_at=_time(w.occurred_at),
        message_id=w.message_id,
        source=w.source,
        author=w.author,
        content=w.content,
        thread_id=w.thread_id,
        task_id=w.task_id,
    )


def decode_task_created(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> TaskCreated:
    return _decode(wire.TASK_CREATED, wire.TaskCreatedWire, payload, "task-created", max_bytes, _task_created)


def decode_execution_result(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> ExecutionResult:
    return _decode(
        wire.EXECUTION_RESULT,
        wire.ExecutionResultWire,
        payload,
        "execution-result",
        max_bytes,
        _execution_result,
    )


def decode_message_ingested(payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> MessageIngested:
    return _decode(
        wire.MESSAGE_INGESTED,
        wire.MessageIngestedWire,
        payload,
        "message-ingested",
        max_bytes,
        _message_ingested,
    )


def _default(value: Any) -> Any:
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


def _alternatives(items: list[dict[str, Any]]) -> tuple[ArmAlternative, ...]:
    return tuple(ArmAlternative(**a) for a in items)


def decode_task_schedule(payload: bytes) -> TaskSchedule:
    """Typed schedule record for downstream consumers (validated against its schema)."""
    d = orjson.loads(payload)
    _validator("task-schedule")(d)
    fields = {
        **d,
        "occurred_at": _time(d["occurred_at"]),
        "deadline": _opt_time(d["deadline"]),
        "alternatives": _alternatives(d["alternatives"]),
        "similar_tasks": tuple(SimilarTask(**s) for s in d["similar_tasks"]),
    }
    if "unsatisfiable_requirements" in d:
        fields["unsatisfiable_requirements"] = tuple(d["unsatisfiable_requirements"])
        return UnsatisfiableTaskSchedule(**fields)
    return TaskSchedule(**fields)


def _snapshot_entry(e: dict[str, Any]) -> SnapshotEntry:
    fields = {**e, "deadline": _opt_time(e["deadline"])}
    if "blocked_by" in e:
        return BlockedSnapshotEntry(**{**fields, "blocked_by": tuple(e["blocked_by"])})
    return SnapshotEntry(**fields)


def decode_schedule_snapshot(payload: bytes) -> ScheduleSnapshot:
    d = orjson.loads(payload)
    _validator("schedule-snapshot")(d)
    entries = tuple(_snapshot_entry(e) for e in d["entries"])
    common = {
        "event_id": d["event_id"],
        "occurred_at": _time(d["occurred_at"]),
        "pending_count": d["pending_count"],
        "entries": entries,
        "schema_version": d["schema_version"],
    }
    if "blocked_count" in d or "dependency_problems" in d:
        problems = tuple(
            DependencyIssue(p["kind"], tuple(p["task_ids"]), tuple(p["missing"]))
            for p in d.get("dependency_problems", [])
        )
        return DependencySnapshot(
            **common, blocked_count=d.get("blocked_count", 0), dependency_problems=problems
        )
    return ScheduleSnapshot(**common)


def decode_message_duplicate(payload: bytes) -> MessageDuplicate:
    d = orjson.loads(payload)
    _validator("message-duplicate")(d)
    return MessageDuplicate(**{**d, "occurred_at": _time(d["occurred_at"])})


def decode_insights_snapshot(payload: bytes) -> InsightsSnapshot:
    d = orjson.loads(payload)
    _validator("insights-snapshot")(d)
    return InsightsSnapshot(
        event_id=d["event_id"],
        occurred_at=_time(d["occurred_at"]),
        success_target=d["success_target"],
        accuracy=tuple(AccuracyWindow(**a) for a in d["accuracy"]),
        failure_patterns=tuple(
            FailurePattern(
                **{
                    **f,
                    "arms": tuple(f["arms"]),
                    "kinds": tuple(f["kinds"]),
                    "examples": tuple(FailureExample(**e) for e in f["examples"]),
                }
            )
            for f in d["failure_patterns"]
        ),
        capability_gaps=tuple(
            GapReport(**{**g, "kinds": tuple(g["kinds"]), "examples": tuple(g["examples"])})
            for g in d["capability_gaps"]
        ),
        arms=tuple(ArmUsage(**{**a, "flags": tuple(a["flags"])}) for a in d["arms"]),
        schema_version=d["schema_version"],
    )
