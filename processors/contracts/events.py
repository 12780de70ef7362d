"""Typed records for every event tasksage reads or writes. Field names match the JSON Schemas."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class TaskCreated:
    event_id: str
    occurred_at: datetime
    task_id: str
    description: str
    kind: str | None = None
    priority: int = 0
    requirements: tuple[str, ...] = ()
    dependencies: tuple[str, ...] = ()
    context: dict[str, Any] = field(default_factory=dict)
    requested_agent: str | None = None
    deadline: datetime | None = None
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    event_id: str
    occurred_at: datetime
    task_id: str
    agent: str
    model: str
    success: bool
    finished_at: datetime
    duration_ms: float | None = None
    cost_usd: float | None = None
    error_message: str | None = None
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class MessageIngested:
    event_id: str
    occurred_at: datetime
    message_id: str
    source: str
    author: str
    content: str
    thread_id: str | None = None
    task_id: str | None = None
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class ArmAlternative:
    agent: str
    model: str
    success_probability: float
    confidence: float
    predicted_duration_ms: float | None
    expected_cost_usd: float | None
    evidence: float
    meets_target: bool
    score: float


@dataclass(frozen=True, slots=True)
class SimilarTask:
    task_id: str
    similarity: float


@dataclass(frozen=True, slots=True)
class TaskSchedule:
    event_id: str
    occurred_at: datetime
    schedule_id: str
    task_id: str
    kind: str | None
    priority: int
    deadline: datetime | None
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
    alternatives: tuple[ArmAlternative, ...]
    similar_tasks: tuple[SimilarTask, ...]
    source_event_id: str
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class SnapshotEntry:
    rank: int
    task_id: str
    score: float
    agent: str
    model: str
    success_probability: float
    predicted_duration_ms: float | None
    priority: int
    deadline: datetime | None


@dataclass(frozen=True, slots=True)
class ScheduleSnapshot:
    event_id: str
    occurred_at: datetime
    pending_count: int
    entries: tuple[SnapshotEntry, ...]
    schema_version: int = 1


# Optional fields are subclasses, not fields with defaults: the encoder writes every field of a
# record, so a record without the information keeps exactly the shape consumers already read.


@dataclass(frozen=True, slots=True)
class UnsatisfiableTaskSchedule(TaskSchedule):
    """A schedule for a task whose requirements no arm declares: the chosen arm is the best one
    ignoring them, and `unsatisfiable_requirements` names what nobody can provide."""

    unsatisfiable_requirements: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BlockedSnapshotEntry(SnapshotEntry):
    """A pending task that waits for unfinished (or unknown) dependencies: listed after all ready work."""

    blocked_by: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DependencyIssue:
    kind: str  # 'cycle' | 'unknown_dependency'
    task_ids: tuple[str, ...]
    missing: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class DependencySnapshot(ScheduleSnapshot):
    """A snapshot of pending work with dependencies: how many wait and what cannot be resolved."""

    blocked_count: int = 0
    dependency_problems: tuple[DependencyIssue, ...] = ()


@dataclass(frozen=True, slots=True)
class MessageDuplicate:
    event_id: str
    occurred_at: datetime
    message_id: str
    duplicate_of: str
    similarity: float
    embedding_model: str
    schema_version: int = 1


@dataclass(frozen=True, slots=True)
class AccuracyWindow:
    window: str  # hour | day | week | all
    outcomes: int
    success_rate: float | None
    mean_probability: float | None
    brier: float | None
    log_loss: float | None
    ece: float | None
    duration_mae_ms: float | None
    cost_mae_usd: float | None


@dataclass(frozen=True, slots=True)
class FailureExample:
    task_id: str
    description: str
    error_message: str


@dataclass(frozen=True, slots=True)
class FailurePattern:
    size: int
    failure_rate: float
    overall_failure_rate: float
    lift: float | None  # None when the arm never failed overall
    p_value: float  # one-sided binomial test of the main arm's failures there against its overall rate
    arms: tuple[str, ...]  # "agent/model", most failures first; the figures are the first one's
    kinds: tuple[str, ...]
    examples: tuple[FailureExample, ...]


@dataclass(frozen=True, slots=True)
class GapReport:
    tasks: int
    kinds: tuple[str, ...]
    best_agent: str
    best_model: str
    best_probability: float
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ArmUsage:
    agent: str
    model: str
    schedule_share: float
    outcome_share: float
    success_rate: float | None
    mean_cost_usd: float | None
    pending: int
    throughput_per_hour: float
    flags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InsightsSnapshot:
    event_id: str
    occurred_at: datetime
    success_target: float
    accuracy: tuple[AccuracyWindow, ...]
    failure_patterns: tuple[FailurePattern, ...]
    capability_gaps: tuple[GapReport, ...]
    arms: tuple[ArmUsage, ...]
    schema_version: int = 1
