"""Read-only views of a task and of the arm statistics, for the HTTP API: one task with its
latest schedule and its outcomes, the schedule made for one task-created event, every arm's
totals. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from processors.postgres.pool import Conn

_SCHEDULE_COLUMNS = """schedule_id, task_id, agent, model, success_probability, confidence,
    predicted_duration_ms, expected_cost_usd, success_target, cold_start, exploration, embedding_model,
    alternatives, source_event_id, created_at"""


@dataclass(frozen=True, slots=True)
class TaskView:
    task: dict[str, Any]  # the task as a task-created document (its last accepted event)
    status: str
    attempts: int
    successes: int
    schedule: dict[str, Any] | None  # the latest schedule made for it
    outcomes: list[dict[str, Any]]  # its execution results, oldest first


def _json(value: Any) -> Any:
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def _schedule(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["alternatives"] = _json(out["alternatives"])
    return out


async def task_view(conn: Conn, task_id: str) -> TaskView | None:
    row = await conn.fetchrow(
        """SELECT task_id, description, kind, priority, requirements, dependencies, context, requested_agent,
               deadline, occurred_at, created_event_id, status, attempts, successes
           FROM tasks WHERE task_id = $1""",
        task_id,
    )
    if row is None:
        return None
    schedule = await conn.fetchrow(
        f"SELECT {_SCHEDULE_COLUMNS} FROM predictions WHERE task_id = $1 ORDER BY created_at DESC LIMIT 1",
        task_id,
    )
    outcomes = await conn.fetch(
        """SELECT event_id, agent, model, success, duration_ms, cost_usd, error_message, finished_at, occurred_at
           FROM executions WHERE task_id = $1 ORDER BY finished_at, event_id""",
        task_id,
    )
    task = {
        "event_id": row["created_event_id"],
        "schema_version": 1,
        "occurred_at": row["occurred_at"],
        "task_id": row["task_id"],
        "description": row["description"],
        "kind": row["kind"],
        "priority": row["priority"],
        "requirements": _json(row["requirements"]),
        "dependencies": _json(row["dependencies"]),
        "context": _json(row["context"]),
        "requested_agent": row["requested_agent"],
        "deadline": row["deadline"],
    }
    return TaskView(
        task,
        row["status"],
        row["attempts"],
        row["successes"],
        None if schedule is None else _schedule(schedule),
        [dict(r) for r in outcomes],
    )


async def schedule_for_event(conn: Conn, source_event_id: str) -> dict[str, Any] | None:
    """The schedule the worker made for one task-created event, once it has committed it."""
    row = await conn.fetchrow(
        f"SELECT {_SCHEDULE_COLUMNS} FROM predictions WHERE source_event_id = $1 LIMIT 1", source_event_id
    )
    return None if row is None else _schedule(row)


@dataclass(frozen=True, slots=True)
class ArmRow:
    scope: str  # '*' for every task, else a task kind
    agent: str
    model: str
    attempts: int
    successes: int
    mean_duration_ms: float | None
    mean_cost_usd: float | None
    updated_at: datetime


async def arm_rows(conn: Conn, scope: str | None = None) -> list[ArmRow]:
    """Every arm's totals, per scope; `scope` keeps one ('*' or a kind)."""
    rows = await conn.fetch(
        """SELECT scope, agent, model, attempts, successes, duration_sum_ms, duration_n, cost_sum_usd, cost_n,
               updated_at
           FROM arm_stats WHERE $1::text IS NULL OR scope = $1 ORDER BY scope, agent, model""",
        scope,
    )
    return [
        ArmRow(
            r["scope"],
            r["agent"],
            r["model"],
            int(r["attempts"]),
            int(r["successes"]),
            r["duration_sum_ms"] / r["duration_n"] if r["duration_n"] else None,
            r["cost_sum_usd"] / r["cost_n"] if r["cost_n"] else None,
            r["updated_at"],
        )
        for r in rows
    ]


async def ping(conn: Conn) -> bool:
    return bool(await conn.fetchval("SELECT true"))
