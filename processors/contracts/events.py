"""Every event tasksage reads or writes, defined once.

These structs are the definition: the worker decodes input bytes straight into them, encodes
its outputs from them, and the JSON Schemas in schemas/ are generated from them
(`python -m processors.contracts.generate`; a contract test fails when the files drift). The
constraints in each `Meta` are therefore checked twice from one source: by msgspec on the fast
path and by the generated schema wherever a schema validator reads the events.

A top-level event's docstring is its schema's description; a field's `Meta(description=...)`
is the property's. Optional output fields default to `UNSET` and are left out when encoded, so a
record without the information has exactly the shape consumers already read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from msgspec import UNSET, Meta, Struct, UnsetType

# Shared field types. `Literal[1]` with a default: a record built in code is version 1 without
# saying so, while the generated schema still requires the field on the wire.
Version = Annotated[Literal[1], Meta(description="Contract version; this worker reads version 1.")]
EventId = Annotated[
    str,
    Meta(
        min_length=1, max_length=200, description="Unique id of this event; processing is idempotent by it."
    ),
]
# RFC 3339 requires the offset; msgspec would also read a time without one.
Time = Annotated[datetime, Meta(tz=True)]
OccurredAt = Annotated[datetime, Meta(tz=True, description="When the event happened upstream (RFC 3339).")]
Id = Annotated[str, Meta(min_length=1, max_length=200)]
Name = Annotated[str, Meta(max_length=200)]
Text = Annotated[str, Meta(min_length=1, max_length=32000)]
Probability = Annotated[float, Meta(ge=0, le=1)]
NonNegative = Annotated[float, Meta(ge=0)]
Count = Annotated[int, Meta(ge=0)]
# Any name but "*", which names the tier table's default rows and the statistics of all tasks.
# The lookahead refuses exactly "*" (not "*" followed by a newline, as `\*$` would); the schema
# generator writes it as the readable `"not": {"const": "*"}`.
NOT_STAR = r"^(?!\*(?![\s\S]))"
WindowName = Literal["hour", "day", "week", "all"]
ArmFlag = Literal["unused", "dominated", "overloaded"]


class Event(Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The envelope every event starts with (a base, not an event: it has no schema of its own)."""

    event_id: EventId
    schema_version: Version = 1
    occurred_at: OccurredAt


class TaskCreated(Event, frozen=True, kw_only=True):
    """A new unit of work to schedule. Key: task_id."""

    task_id: Annotated[str, Meta(min_length=1, max_length=200, description="Task id; the record key.")]
    description: Annotated[
        str,
        Meta(
            min_length=1, max_length=32000, description="Text that is embedded and compared with past tasks."
        ),
    ]
    kind: (
        Annotated[
            str,
            Meta(
                max_length=200,
                pattern=NOT_STAR,
                description="Optional task family (used for per-kind statistics and the cold-start tier"
                ' table). "*" is reserved: it names the tier table\'s default rows and the statistics of'
                " all tasks, so it is refused as a kind.",
            ),
        ]
        | None
    ) = None
    priority: Annotated[int, Meta(ge=0, le=100, description="Higher runs earlier.")] = 0
    requirements: Annotated[tuple[Annotated[str, Meta(max_length=500)], ...], Meta(max_length=100)] = ()
    dependencies: Annotated[
        tuple[Id, ...], Meta(max_length=100, description="Task ids that must finish first.")
    ] = ()
    context: Annotated[dict[str, Any], Meta(description="Free-form context, stored as is.")] = {}
    requested_agent: (
        Annotated[str, Meta(max_length=200, description="Pin the agent; the model is still chosen.")] | None
    ) = None
    deadline: Time | None = None


class ExecutionResult(Event, frozen=True, kw_only=True):
    """The outcome of running a task with one (agent, model). Key: task_id."""

    task_id: Id
    agent: Id
    model: Id
    success: bool
    duration_ms: Annotated[float, Meta(ge=0, le=1e12)] | None = None
    cost_usd: Annotated[float, Meta(ge=0, le=1e9)] | None = None
    error_message: Annotated[str, Meta(max_length=32000)] | None = None
    finished_at: Time


class MessageIngested(Event, frozen=True, kw_only=True):
    """A chat or knowledge message to embed and make searchable. Key: message_id."""

    message_id: Id
    source: Id
    author: Name
    content: Text
    thread_id: Name | None = None
    task_id: Name | None = None


class ArmAlternative(Struct, frozen=True, forbid_unknown_fields=True):
    """One (agent, model) the scheduler weighed for a task."""

    agent: str
    model: str
    success_probability: Probability
    confidence: Annotated[
        float, Meta(ge=0, le=1, description="Grows with the evidence behind the estimate (0 = prior only).")
    ]
    predicted_duration_ms: NonNegative | None
    expected_cost_usd: NonNegative | None
    evidence: Annotated[
        float, Meta(ge=0, description="Similarity-weighted count of past outcomes behind the estimate.")
    ]
    meets_target: bool
    score: Annotated[float, Meta(description="Ranking score used by the choice rule (higher is better).")]


class SimilarTask(Struct, frozen=True, forbid_unknown_fields=True):
    task_id: str
    similarity: float


class TaskSchedule(Event, frozen=True, kw_only=True):
    """The recommended (agent, model) for one task. Key: task_id. Deduplicate by event_id (one per task and decision)."""

    schedule_id: str
    task_id: Id
    kind: Name | None
    priority: int
    deadline: Time | None
    agent: str
    model: str
    success_probability: Probability
    confidence: Probability
    predicted_duration_ms: NonNegative | None
    expected_cost_usd: NonNegative | None
    success_target: Probability
    cold_start: Annotated[
        bool, Meta(description="True when the static tier table decided (no outcome history yet).")
    ]
    exploration: Annotated[
        bool, Meta(description="True when the choice was made to learn about a less-tried option.")
    ]
    embedding_model: str
    alternatives: tuple[ArmAlternative, ...]
    similar_tasks: tuple[SimilarTask, ...]
    source_event_id: Annotated[str, Meta(description="event_id of the task-created event this answers.")]
    unsatisfiable_requirements: (
        Annotated[
            tuple[str, ...],
            Meta(
                min_length=1,
                description="Optional: requirements of the task that no arm in the tier table declares"
                " as a capability; agent and model are then the best arm ignoring them.",
            ),
        ]
        | UnsetType
    ) = UNSET


class SnapshotEntry(Struct, frozen=True, forbid_unknown_fields=True):
    """One pending task in ranked order."""

    rank: Annotated[int, Meta(ge=1)]
    task_id: str
    score: float
    agent: str
    model: str
    success_probability: float
    predicted_duration_ms: float | None
    priority: int
    deadline: Time | None
    blocked_by: (
        Annotated[
            tuple[str, ...],
            Meta(
                min_length=1,
                description="Optional: the dependencies this task still waits for; blocked tasks are listed"
                " after every ready task, a dependency always before its dependents.",
            ),
        ]
        | UnsetType
    ) = UNSET


class DependencyIssue(Struct, frozen=True, forbid_unknown_fields=True):
    """A dependency cycle, or a dependency on a task id never seen."""

    kind: Literal["cycle", "unknown_dependency"]
    task_ids: Annotated[
        tuple[str, ...],
        Meta(min_length=1, description="cycle: its members; unknown_dependency: the dependent task."),
    ]
    missing: Annotated[
        tuple[str, ...], Meta(description="unknown_dependency: the ids no task-created event has named.")
    ]


class ScheduleSnapshot(Event, frozen=True, kw_only=True):
    """The ranked order of pending tasks. Key: snapshot scope ('all')."""

    pending_count: Count
    entries: tuple[SnapshotEntry, ...]
    blocked_count: (
        Annotated[
            int,
            Meta(
                ge=0,
                description="Optional (present when some pending task has dependencies): pending tasks"
                " waiting for an unfinished or unknown dependency.",
            ),
        ]
        | UnsetType
    ) = UNSET
    dependency_problems: (
        Annotated[
            tuple[DependencyIssue, ...],
            Meta(
                description="Optional: dependency cycles and dependencies on task ids never seen; the tasks"
                " involved stay blocked."
            ),
        ]
        | UnsetType
    ) = UNSET


class MessageDuplicate(Event, frozen=True, kw_only=True):
    """A message whose nearest neighbour is above the duplicate threshold. Key: message_id."""

    message_id: str
    duplicate_of: str
    similarity: float
    embedding_model: str


class AccuracyWindow(Struct, frozen=True, forbid_unknown_fields=True):
    window: WindowName
    outcomes: Count
    success_rate: float | None
    mean_probability: float | None
    brier: float | None
    log_loss: float | None
    ece: float | None
    duration_mae_ms: float | None
    cost_mae_usd: float | None


class FailureExample(Struct, frozen=True, forbid_unknown_fields=True):
    task_id: str
    description: str
    error_message: str


class FailurePattern(Struct, frozen=True, forbid_unknown_fields=True):
    size: Count
    failure_rate: Annotated[
        float,
        Meta(description="The main arm's (first of arms) failure rate on executions nearest this cluster."),
    ]
    overall_failure_rate: float
    lift: float | None  # None when the arm never failed overall
    p_value: Annotated[
        float,
        Meta(
            ge=0,
            le=1,
            description="One-sided binomial test of the main arm's failures in the cluster against its"
            " overall failure rate.",
        ),
    ]
    arms: tuple[str, ...]  # "agent/model", most failures first; the figures are the first one's
    kinds: tuple[str, ...]
    examples: tuple[FailureExample, ...]


class GapReport(Struct, frozen=True, forbid_unknown_fields=True):
    tasks: Count
    kinds: tuple[str, ...]
    best_agent: str
    best_model: str
    best_probability: float
    examples: tuple[str, ...]


class ArmUsage(Struct, frozen=True, forbid_unknown_fields=True):
    agent: str
    model: str
    schedule_share: float
    outcome_share: float
    success_rate: float | None
    mean_cost_usd: float | None
    pending: Count
    throughput_per_hour: float
    flags: tuple[ArmFlag, ...]


class InsightsSnapshot(Event, frozen=True, kw_only=True):
    """What predictions and outcomes add up to: live accuracy, failure patterns, capability gaps and arm usage. One per TASKSAGE_INSIGHTS_INTERVAL_S. Key: 'all'."""

    # The envelope's fields, described for a snapshot rather than for an upstream event.
    event_id: Annotated[str, Meta(min_length=1, max_length=200, description="Unique id of this event.")]
    schema_version: Annotated[Literal[1], Meta(description="Contract version.")] = 1
    occurred_at: Annotated[datetime, Meta(tz=True, description="When the snapshot was built (RFC 3339).")]
    success_target: Annotated[float, Meta(ge=0, le=1, description="The target gaps are measured against.")]
    accuracy: Annotated[
        tuple[AccuracyWindow, ...],
        Meta(
            description="Outcomes scored against the prediction for their task, per window (sums of hour"
            " buckets, by outcome time)."
        ),
    ]
    failure_patterns: Annotated[
        tuple[FailurePattern, ...],
        Meta(description="Clusters of failed executions (task and error vectors), worst lift first."),
    ]
    capability_gaps: Annotated[
        tuple[GapReport, ...],
        Meta(description="Clusters of recent tasks where no arm's predicted success reaches the target."),
    ]
    arms: Annotated[tuple[ArmUsage, ...], Meta(description="Every configured or used (agent, model).")]


# The published events by schema name: the generator writes one schema per entry, the codec
# decodes and validates by it.
EVENTS: dict[str, type[Event]] = {
    "task-created": TaskCreated,
    "execution-result": ExecutionResult,
    "message-ingested": MessageIngested,
    "task-schedule": TaskSchedule,
    "schedule-snapshot": ScheduleSnapshot,
    "message-duplicate": MessageDuplicate,
    "insights-snapshot": InsightsSnapshot,
}
