"""The input event types, listed once. The worker subscribes to, the CLI and client publish,
the dead-letter tool re-validates and the benchmark generates exactly these streams: adding an
event type is its struct in events.py (with its `EVENTS` entry and generated schema), an entry
here, a processor and a topic setting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from msgspec import Struct

from processors.contracts.codec import DEFAULT_MAX_BYTES, decode
from processors.contracts.events import EVENTS


@dataclass(frozen=True, slots=True)
class InputStream:
    # The logical stream name: also its event's and JSON Schema's name, its default topic and
    # the suffix of its topic setting (TASKSAGE_TOPIC_<NAME>).
    name: str
    # The event field that keys its Kafka records, so one task's events share a partition.
    key_field: str

    @property
    def event_type(self) -> type[Struct]:
        return EVENTS[self.name]

    @property
    def topic_setting(self) -> str:
        return "topic_" + self.name.replace("-", "_")

    def decode(self, payload: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> Any:
        """Bytes -> the typed event, validated against the schema (raises InvalidEvent)."""
        return decode(self.name, payload, max_bytes)


INPUT_STREAMS: tuple[InputStream, ...] = (
    InputStream("task-created", "task_id"),
    InputStream("execution-result", "task_id"),
    InputStream("message-ingested", "message_id"),
)
BY_NAME: dict[str, InputStream] = {s.name: s for s in INPUT_STREAMS}
STREAM_NAMES: tuple[str, ...] = tuple(BY_NAME)
DECODERS: dict[str, Callable[[bytes, int], Any]] = {s.name: s.decode for s in INPUT_STREAMS}
