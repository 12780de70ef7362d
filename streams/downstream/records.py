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


class WindowAccuracy(faust.Record, serializer="json", include_metadata=False):
    window: str
    outcomes: int
    success_rate: float | None
    mean_probability: float | None
    brier: float | None
    log_loss: float | None
    ece: float | None
    duration_mae_ms: float | None
    cost_mae_usd: float | None


class FailureExample(faust.Record, serializer="json", include_metadata=False):
    task_id: str
    description: str
    error_message: str


class FailurePattern(faust.Record, serializer="json", include_metadata=False):
    size: int
    failure_rate: float
    overall_failure_rate: float
    lift: float | None
    p_value: float
    arms: list[str]
    kinds: list[str]
    examples: list[FailureExample]


class CapabilityGap(faust.Record, serializer="json", include_metadata=False):
    tasks: int
    kinds: list[str]
    best_agent: str
    best_model: str
    best_probability: float
    examples: list[str]


class ArmUsage(faust.Record, serializer="json", include_metadata=False):
    agent: str
    model: str
    schedule_share: float
    outcome_share: float
    success_rate: float | None
    mean_cost_usd: float | None
    pending: int
    throughput_per_hour: float
    flags: list[str]


class InsightsSnapshot(faust.Record, serializer="json", include_metadata=False):
    """Live accuracy, failure patterns, capability gaps and arm usage (topic insights)."""

    event_id: str
    schema_version: int
    occurred_at: str
    success_target: float
    accuracy: list[WindowAccuracy]
    failure_patterns: list[FailurePattern]
    capability_gaps: list[CapabilityGap]
    arms: list[ArmUsage]


# Output event name (the schema's file name) -> its Record.
RECORDS: dict[str, type[faust.Record]] = {
    "task-schedule": TaskSchedule,
    "schedule-snapshot": ScheduleSnapshot,
    "message-duplicate": MessageDuplicate,
    "insights-snapshot": InsightsSnapshot,
}
