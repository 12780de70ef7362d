"""Event contracts: JSON Schemas (the published source of truth), typed records and the codec."""

from processors.contracts.codec import (
    SCHEMA_VERSION,
    decode_execution_result,
    decode_message_ingested,
    decode_task_created,
    encode,
    load_schema,
    validate_output,
)
from processors.contracts.events import (
    ArmAlternative,
    BlockedSnapshotEntry,
    DependencyIssue,
    DependencySnapshot,
    ExecutionResult,
    MessageDuplicate,
    MessageIngested,
    ScheduleSnapshot,
    SimilarTask,
    SnapshotEntry,
    TaskCreated,
    TaskSchedule,
    UnsatisfiableTaskSchedule,
)

__all__ = [
    "SCHEMA_VERSION",
    "ArmAlternative",
    "BlockedSnapshotEntry",
    "DependencyIssue",
    "DependencySnapshot",
    "ExecutionResult",
    "MessageDuplicate",
    "MessageIngested",
    "ScheduleSnapshot",
    "SimilarTask",
    "SnapshotEntry",
    "TaskCreated",
    "TaskSchedule",
    "UnsatisfiableTaskSchedule",
    "decode_execution_result",
    "decode_message_ingested",
    "decode_task_created",
    "encode",
    "load_schema",
    "validate_output",
]
