"""Fault tests: real broker, real PostgreSQL, workers as real `tasksage worker` processes.

Sizes are small by default so `make test` stays fast; the full runs (the README's "Fault tests"
section) are TASKSAGE_FAULT_EVENTS=20000 TASKSAGE_FAULT_SEEDS=5 .venv/bin/pytest tests/faults -s
and TASKSAGE_FAULT_REPORT=path.jsonl collects one line of numbers per run.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from streams.settings import Settings

EVENTS = int(os.environ.get("TASKSAGE_FAULT_EVENTS", "3000"))
SEEDS = [int(s) for s in os.environ.get("TASKSAGE_FAULT_SEED_LIST", "").split(",") if s] or list(
    range(1, int(os.environ.get("TASKSAGE_FAULT_SEEDS", "2")) + 1)
)
KILLS = int(os.environ.get("TASKSAGE_FAULT_KILLS", "3"))
# Group timing of the fault workers: "quick" (2 s sessions, 500 ms heartbeats: short runs) or
# "default" (the worker's own defaults, as the README's recovery figures are measured).
GROUP_TIMING: dict[str, Any] = (
    {name: Settings.model_fields[name].default for name in ("session_timeout_ms", "heartbeat_interval_ms")}
    if os.environ.get("TASKSAGE_FAULT_GROUP_TIMING", "quick") == "default"
    else {"session_timeout_ms": 2000, "heartbeat_interval_ms": 500}
)
# How long the kill -9 test publishes: every kill must land while events still flow, or its
# recovery is not measured (slow group timing needs longer than the quick default).
PUBLISH_S = float(os.environ.get("TASKSAGE_FAULT_PUBLISH_S", "0")) or 2.5 * KILLS + 2
if os.environ.get("TASKSAGE_FAULT_GROUP_INSTANCE_ID"):
    GROUP_TIMING["group_instance_id"] = os.environ["TASKSAGE_FAULT_GROUP_INSTANCE_ID"]


@pytest.fixture
def fault_settings(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings for subprocess workers: quick group changes, quick outbox sweeps."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            **GROUP_TIMING,
            "outbox_sweep_after_s": 1.0,
            "max_event_bytes": 64_000,
            "health_probe_interval_s": 1.0,
            "shutdown_timeout_s": 10.0,
            "log_level": os.environ.get("TASKSAGE_FAULT_LOG_LEVEL", "INFO"),
        }
        values.update(overrides)
        return make_settings(**values)

    return build


def report(name: str, **numbers: Any) -> None:
    """Print one run's numbers; append them to TASKSAGE_FAULT_REPORT when set."""
    line = json.dumps({"test": name, **numbers}, default=str)
    sys.stdout.write(f"\nFAULT-REPORT {line}\n")
    target = os.environ.get("TASKSAGE_FAULT_REPORT")
    if target:
        with Path(target).open("a") as f:
            f.write(line + "\n")
