"""Deterministic output records and the canonical JSON form of the golden files.

Output goldens (task-schedule, schedule-snapshot, message-duplicate) are the encoded records
built here; input goldens are hand-written realistic events. Both live in golden/<schema>.json.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from processors.contracts import (
    AccuracyWindow,
    ArmAlternative,
    ArmUsage,
    DependencyIssue,
    FailureExample,
    FailurePattern,
    GapReport,
    InsightsSnapshot,
    MessageDuplicate,
    ScheduleSnapshot,
    SimilarTask,
    SnapshotEntry,
    TaskSchedule,
    encode,
)
from processors.contracts.codec import SCHEMA_NAMES

HERE = Path(__file__).resolve().parent
GOLDEN_DIR = HERE / "golden"
CHECKSUM_FILE = HERE / "schemas.sha256"
SCHEMA_DIR = HERE.parents[1] / "processors" / "contracts" / "schemas"
INPUT_SCHEMAS = ("task-created", "execution-result", "message-ingested")
REFRESH_COMMAND = ".venv/bin/python -m tests.contract.refresh"

AT = datetime(2026, 3, 2, 9, 15, 30, 250000, tzinfo=UTC)
DEADLINE = datetime(2026, 3, 2, 17, 0, tzinfo=UTC)


def canonical(payload: bytes) -> bytes:
    """Sorted keys, two-space indent, trailing newline: stable bytes for files and diffs."""
    return orjson.dumps(orjson.loads(payload), option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"


def task_schedule() -> TaskSchedule:
    """Complete: shows the optional unsatisfiable_requirements, present only when no arm can do it."""
    return TaskSchedule(
        event_id="schedule:T-1042:evt-7f3a",
        occurred_at=AT,
        schedule_id="T-1042:evt-7f3a",
        task_id="T-1042",
        kind="code",
        priority=2,
        deadline=DEADLINE,
        agent="coder",
        model="small",
        success_probability=0.912345,
        confidence=0.61,
        predicted_duration_ms=4150.5,
        expected_cost_usd=0.0008,
        success_target=0.8,
        cold_start=False,
        exploration=False,
        embedding_model="text-embedding-3-small",
        alternatives=(
            ArmAlternative("coder", "small", 0.912345, 0.61, 4150.5, 0.0008, 11.25, True, 1.9992),
            ArmAlternative("coder", "medium", 0.94, 0.58, 9100.0, 0.008, 10.5, True, 1.992063),
            ArmAlternative("coder", "large", 0.97, 0.4, None, None, 3.0, True, 1.0),
        ),
        similar_tasks=(SimilarTask("T-0977", 0.934211), SimilarTask("T-1003", 0.88)),
        source_event_id="evt-7f3a",
        unsatisfiable_requirements=("gpu",),
    )


def schedule_snapshot() -> ScheduleSnapshot:
    """Complete: shows the optional dependency fields, present only when pending work has any."""
    return ScheduleSnapshot(
        event_id="snapshot:5d1c0b6e2f7a49c08e3b9a1f4c2d6e80",
        occurred_at=AT,
        pending_count=3,
        entries=(
            SnapshotEntry(1, "T-1042", 7.512, "coder", "small", 0.912345, 4150.5, 2, DEADLINE),
            SnapshotEntry(2, "T-1043", 4.25, "researcher", "large", 0.88, None, 0, None),
            SnapshotEntry(3, "T-1044", 9.1, "coder", "medium", 0.9, 9100.0, 5, None, ("T-1042", "T-0999")),
        ),
        blocked_count=1,
        dependency_problems=(DependencyIssue("unknown_dependency", ("T-1044",), ("T-0999",)),),
    )


def message_duplicate() -> MessageDuplicate:
    return MessageDuplicate(
        event_id="duplicate:evt-m-88",
        occurred_at=AT,
        message_id="M-88",
        duplicate_of="M-61",
        similarity=0.973,
        embedding_model="all-MiniLM-L6-v2",
    )


def insights_snapshot() -> InsightsSnapshot:
    return InsightsSnapshot(
        event_id="insights:2026-03-02T09:15:30Z",
        occurred_at=AT,
        success_target=0.8,
        accuracy=(
            AccuracyWindow("hour", 0, None, None, None, None, None, None, None),
            AccuracyWindow("day", 412, 0.83, 0.8125, 0.1402, 0.4391, 0.0412, 2310.5, 0.0011),
        ),
        failure_patterns=(
            FailurePattern(
                size=37,
                failure_rate=0.97,
                overall_failure_rate=0.21,
                lift=4.619048,
                p_value=1.2e-09,
                arms=("generalist/small",),
                kinds=("qa",),
                examples=(
                    FailureExample(
                        "T-0812",
                        "answer customer question about retries in billing",
                        "browser tool unavailable in sandbox",
                    ),
                ),
            ),
        ),
        capability_gaps=(
            GapReport(
                tasks=24,
                kinds=("ml",),
                best_agent="coder",
                best_model="large",
                best_probability=0.18,
                examples=("train a forecasting model for billing on a GPU",),
            ),
        ),
        arms=(
            ArmUsage("coder", "small", 0.41, 0.43, 0.9, 0.0008, 3, 52.5, ()),
            ArmUsage("translator", "small", 0.0, 0.0, None, None, 0, 0.0, ("unused",)),
        ),
    )


OUTPUT_RECORDS: dict[str, Any] = {
    "task-schedule": task_schedule,
    "schedule-snapshot": schedule_snapshot,
    "message-duplicate": message_duplicate,
    "insights-snapshot": insights_snapshot,
}
assert set(INPUT_SCHEMAS) | set(OUTPUT_RECORDS) == set(SCHEMA_NAMES)


def golden_path(name: str) -> Path:
    return GOLDEN_DIR / f"{name}.json"


def encoded_output(name: str) -> bytes:
    return canonical(encode(OUTPUT_RECORDS[name]()))


def schema_checksums() -> dict[str, str]:
    return {
        f"{name}.json": hashlib.sha256((SCHEMA_DIR / f"{name}.json").read_bytes()).hexdigest()
        for name in SCHEMA_NAMES
    }


def read_checksum_file() -> dict[str, str]:
    out = {}
    for line in CHECKSUM_FILE.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            digest, name = line.split()
            out[name] = digest
    return out
