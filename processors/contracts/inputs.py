"""The input event types, listed once. The worker subscribes to, the CLI and client publish,
the dead-letter tool re-validates and the benchmark generates exactly these streams: adding an
event type is an entry here (plus its struct, schema, processor and topic setting)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from processors.contracts.codec import decode_execution_result, decode_message_ingested, decode_task_created
from processors.contracts.events import ExecutionResult, MessageIngested, TaskCreated


@dataclass(frozen=True, slots=True)
class InputStream:
    # The logical stream name: also its JSON Schema's name, its default topic and the suffix
    # of its topic setting (TASKSAGE_TOPIC_<NAME>).
    name: str
    event_type: type[Any]
    # Bytes -> the typed event, validated against the schema (raises InvalidEvent).
    decode: Callable[[bytes, int], Any]
    # The event field that keys its Kafka records, so one task's events share a partition.
    key_field: str

    @property
    def topic_setting(self) -> str:
        return "topic_" + self.name.replace("-", "_")


INPUT_STREAMS: tuple[InputStream, ...] = (
    InputStream("task-created", TaskCreated, decode_task_created, "task_id"),
    InputStream("execution-result", ExecutionResult, decode_execution_result, "task_id"),
    InputStream("message-ingested", MessageIngested, decode_message_ingested, "message_id"),
)
BY_NAME: dict[str, InputStream] = {s.name: s for s in INPUT_STREAMS}
STREAM_NAMES: tuple[str, ...] = tuple(BY_NAME)
DECODERS: dict[str, Callable[[bytes, int], Any]] = {s.name: s.decode for s in INPUT_STREAMS}
