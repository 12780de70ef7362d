"""Records shared by the stream runtime, the processors and storage (processors/postgres):
values that flow between them. Every layer imports this module downward.

The per-record values (records, sources, outgoing records) are frozen msgspec Structs rather
than frozen dataclasses: every record makes several of them, and a frozen dataclass's
__init__ (one object.__setattr__ per field) costs several times as much. They are as
immutable, slotted and comparable as the dataclasses.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

import msgspec

E = TypeVar("E")


class SourceRef(msgspec.Struct, frozen=True, gc=False):
    """Where a record came from: every log line and dead letter names it."""

    topic: str
    partition: int
    offset: int


class Incoming(msgspec.Struct, Generic[E], frozen=True):
    event: E
    source: SourceRef
    raw: bytes


class Rejected(msgspec.Struct, frozen=True, gc=False):
    """A record that can never be processed; it goes to the dead-letter topic with its reason."""

    source: SourceRef
    key: bytes | None
    value: bytes | None
    error_class: str
    error_message: str
    event_id: str | None = None


class OutgoingRecord(msgspec.Struct, frozen=True, gc=False):
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()
    outbox_id: int | None = None  # set once the record is in the outbox table


class Position(msgspec.Struct, frozen=True, gc=False):
    topic: str
    partition: int
    next_offset: int


class Decision(Protocol):
    """What BatchResult.decided reads of a committed schedule (processors.contracts.TaskSchedule
    has these): structural, since records sit below the contracts and import nothing upward."""

    @property
    def agent(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def cold_start(self) -> bool: ...
    @property
    def exploration(self) -> bool: ...


@dataclass(slots=True)
class BatchResult:
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    held: int = 0
    outputs: list[OutgoingRecord] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)  # e.g. embed, search, commit
    # (agent, model, basis) of each schedule committed by the batch, basis "cold_start",
    # "exploration" or "estimate": counted per arm in the worker's metrics.
    decisions: list[tuple[str, str, str]] = field(default_factory=list)

    def decided(self, schedules: Iterable[Decision]) -> None:
        """Record the arm and basis of each committed schedule."""
        for s in schedules:
            basis = "cold_start" if s.cold_start else "exploration" if s.exploration else "estimate"
            self.decisions.append((s.agent, s.model, basis))

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        """Accumulate wall time of a stage, for metrics and the benchmark's breakdown."""
        started = time.perf_counter()
        try:
            yield
        finally:
            self.stage_seconds[stage] = self.stage_seconds.get(stage, 0.0) + time.perf_counter() - started


def positions_after(sources: Sequence[SourceRef]) -> list[Position]:
    """The next offset to read for each partition touched by a batch."""
    latest: dict[tuple[str, int], int] = {}
    for src in sources:
        key = (src.topic, src.partition)
        latest[key] = max(latest.get(key, -1), src.offset)
    return [Position(t, p, off + 1) for (t, p), off in sorted(latest.items())]


def dead_letter_headers(rejected: Rejected) -> tuple[tuple[str, bytes], ...]:
    """Kafka Connect's dead-letter header names, so existing tooling reads them."""
    return (
        ("__connect.errors.topic", rejected.source.topic.encode()),
        ("__connect.errors.partition", str(rejected.source.partition).encode()),
        ("__connect.errors.offset", str(rejected.source.offset).encode()),
        ("__connect.errors.exception.class.name", rejected.error_class.encode()),
        ("__connect.errors.exception.message", rejected.error_message.encode("utf-8", "replace")),
        ("tasksage.event_id", (rejected.event_id or "").encode("utf-8", "replace")),
    )


class RawRecord(msgspec.Struct, frozen=True, gc=False):
    """A record as read from the log, independent of the Kafka client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int = 0

    @property
    def source(self) -> SourceRef:
        return SourceRef(self.topic, self.partition, self.offset)


# The published schemas bound every event_id to this many characters.
MAX_EVENT_ID = 200


def output_event_id(prefix: str, natural: str) -> str:
    """`prefix:natural`, or, when that is longer than the schemas allow (input ids reach 200
    characters each), `prefix:sha256:<hex of natural>`: as deterministic, so a repeated output
    keeps its id, and within the bound."""
    readable = f"{prefix}:{natural}"
    if len(readable) <= MAX_EVENT_ID:
        return readable
    return f"{prefix}:sha256:{hashlib.sha256(natural.encode()).hexdigest()}"
