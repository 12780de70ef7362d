"""Reads the dependency-aware ranking needs: the pending tasks with their latest predictions, and
the status of tasks that others depend on."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from processors.postgres.pool import Conn
from processors.scheduling.dependencies import Status


async def task_status(conn: Conn, task_ids: Collection[str]) -> dict[str, Status]:
    """Status of each id that names a known task; ids absent from the result are unknown."""
    if not task_ids:
        return {}
    rows = await conn.fetch(
        "SELECT task_id, status FROM tasks WHERE task_id = ANY($1::text[])", sorted(task_ids)
    )
    return {r["task_id"]: r["status"] for r in rows}


async def pending_with_predictions(conn: Conn, limit: int) -> list[Any]:
    """Up to `limit` pending tasks, highest priority and oldest first, each with its latest
    prediction and its dependencies (JSON text, or None without any): what a schedule snapshot
    ranks."""
    return list(
        await conn.fetch(
            """SELECT t.task_id, t.priority, t.deadline, t.occurred_at, p.success_probability,
                      p.predicted_duration_ms, p.agent, p.model,
                      NULLIF(t.dependencies, '[]'::jsonb)::text AS dependencies
               FROM tasks t
               JOIN LATERAL (SELECT * FROM predictions p WHERE p.task_id = t.task_id
                             ORDER BY p.created_at DESC LIMIT 1) p ON true
               WHERE t.status = 'pending'
               ORDER BY t.priority DESC, t.occurred_at LIMIT $1""",
            limit,
        )
    )
