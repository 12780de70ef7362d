"""The fast path of decoding the three input events: decoding and JSON Schema validation were
the largest share of the worker's CPU per event, so valid input skips the generic validator.

msgspec decodes the bytes straight into these structs, checking the same constraints as the
published JSON Schemas (schemas/*.json stay the contract). It may only be stricter, never looser:
whatever it refuses goes through orjson and the schema validator, which decide and word the
error. tests/unit/test_wire.py checks both directions on generated documents: everything the fast
path accepts the schema accepts, and both paths build equal events.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from fastjsonschema.draft04 import CodeGeneratorDraft04

# The very pattern the schema validator applies to "format": "date-time".
DATE_TIME = CodeGeneratorDraft04.FORMAT_REGEXS["date-time"]

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Name = Annotated[str, msgspec.Meta(max_length=200)]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=32000)]
Time = Annotated[str, msgspec.Meta(pattern=DATE_TIME)]
# A task kind: any name but "*", which the schema refuses (it names the defaults and all tasks).
Kind = Annotated[str, msgspec.Meta(max_length=200, pattern=r"^(?!\*$)")]


class TaskCreatedWire(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event_id: Id
    schema_version: Literal[1]
    occurred_at: Time
    task_id: Id
    description: Text
    kind: Kind | None = None
    priority: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0
    requirements: Annotated[
        list[Annotated[str, msgspec.Meta(max_length=500)]], msgspec.Meta(max_length=100)
    ] = []
    dependencies: Annotated[list[Id], msgspec.Meta(max_length=100)] = []
    context: dict[str, Any] = {}
    requested_agent: Name | None = None
    deadline: Time | None = None


class ExecutionResultWire(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event_id: Id
    schema_version: Literal[1]
    occurred_at: Time
    task_id: Id
    agent: Id
    model: Id
    success: bool
    finished_at: Time
    duration_ms: Annotated[float, msgspec.Meta(ge=0, le=1e12)] | None = None
    cost_usd: Annotated[float, msgspec.Meta(ge=0, le=1e9)] | None = None
    error_message: Annotated[str, msgspec.Meta(max_length=32000)] | None = None


class MessageIngestedWire(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event_id: Id
    schema_version: Literal[1]
    occurred_at: Time
    message_id: Id
    source: Id
    author: Name
    content: Text
    thread_id: Name | None = None
    task_id: Name | None = None


TASK_CREATED = msgspec.json.Decoder(TaskCreatedWire)
EXECUTION_RESULT = msgspec.json.Decoder(ExecutionResultWire)
MESSAGE_INGESTED = msgspec.json.Decoder(MessageIngestedWire)
