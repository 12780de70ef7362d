"""faust Records of tasksage's output events, field for field the published JSON Schemas
(processors/contracts/schemas/*.json; tests/contract/test_faust_records.py holds them to it).

Times arrive as RFC 3339 strings and stay strings here: downstream code parses what it needs.
Optional fields that the schemas mark as not required default to empty.
"""

from __future__ import annotations

import faust


class ArmAlternative(faust.Record, serializer="json", include_metadata=False):
    agent: str
    model: str
    success_probability: float
    confidence: float
    predicted_duration_ms: float | None
    expected_cost_usd: float | None
    evidence: float
    meets_target: bool
    score: float


class SimilarTask(faust.Record, serializer="json", include_metadata=False):
    task_id: str
    similarity: float


class TaskSchedule(faust.Record, serializer="json", include_metadata=False):
    """One task's schedule (topic task-schedules, keyed by task id)."""

    event_id: str
    schema_version: int
    occurred_at: str
    schedule_id: str
    task_id: str
    kind: str | None
    priority: int
    deadline: str | None
    agent: str
    model: str
    success_probability: float
    confidence: float
    predicted_duration_ms: float | None
    expected_cost_usd: float | None
    success_target: float
    cold_start: bool
    exploration: bool
    embedding_model: str
    alternatives: list[ArmAlternative]
    similar_tasks: list[SimilarTask]
    source_event_id: str
    unsatisfiable_requirements: list[str] = []


class SnapshotEntry(faust.Record, serializer="json", include_metadata=False):
    rank: int
    task_id: str
    score: float
    agent: str
    model: str
    success_probability: float
    predicted_duration_ms: float | None
    priority: int
    deadline: str | None
    blocked_by: list[str] = []


class DependencyProblem(faust.Record, serializer="json", include_metadata=False):
    kind: str
    task_ids: list[str]
    missing: list[str]


class ScheduleSnapshot(faust.Record, serializer="json", include_metadata=False):
    """The ranked pending work (topic schedule-snapshots)."""

    event_id: str
    schema_version: int
    occurred_at: str
    pending_count: int
    entries: list[SnapshotEntry]
    blocked_count: int = 0
    dependency_problems: list[DependencyProblem] = []


class MessageDuplicate(faust.Record, serializer="json", include_metadata=False):
    """A message found to repeat an earlier one (topic message-duplicates)."""

    event_id: str
    schema_version: int
    occurred_at: str
    message_id: str
    duplicate_of: str
    similarity: float
    embedding_model: str


# Output event name (the schema's file name) -> its Record.
RECORDS: dict[str, type[faust.Record]] = {
    "task-schedule": TaskSchedule,
    "schedule-snapshot": ScheduleSnapshot,
    "message-duplicate": MessageDuplicate,
}
