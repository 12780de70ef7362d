"""tasks and predictions: what a task-created event stores, inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.postgres.pool import Conn

# tasks: task_id, description, kind, priority, requirements, dependencies, context (JSON text
# each), requested_agent, deadline, occurred_at, content_hash, created_event_id.
TaskRow = tuple[Any, ...]
# predictions: schedule_id, task_id, agent, model, success_probability, confidence,
# predicted_duration_ms, expected_cost_usd, success_target, cold_start, exploration,
# embedding_model, alternatives (JSON text), source_event_id.
PredictionRow = tuple[Any, ...]


async def store_tasks(conn: Conn, rows: Sequence[TaskRow]) -> None:
    """Insert tasks; a task id sent again replaces the task's description and attributes."""
    await conn.executemany(
        """INSERT INTO tasks (task_id, description, kind, priority, requirements, dependencies, context,
               requested_agent, deadline, occurred_at, content_hash, created_event_id)
           VALUES ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7::jsonb, $8, $9, $10, $11, $12)
           ON CONFLICT (task_id) DO UPDATE SET description = EXCLUDED.description, kind = EXCLUDED.kind,
               priority = EXCLUDED.priority, requirements = EXCLUDED.requirements,
               dependencies = EXCLUDED.dependencies, context = EXCLUDED.context,
               requested_agent = EXCLUDED.requested_agent, deadline = EXCLUDED.deadline,
               content_hash = EXCLUDED.content_hash, created_event_id = EXCLUDED.created_event_id""",
        rows,
    )


async def store_predictions(conn: Conn, rows: Sequence[PredictionRow]) -> None:
    """One prediction per schedule (a schedule made again for the same event changes nothing)."""
    await conn.executemany(
        """INSERT INTO predictions (schedule_id, task_id, agent, model, success_probability, confidence,
               predicted_duration_ms, expected_cost_usd, success_target, cold_start, exploration,
               embedding_model, alternatives, source_event_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, $14)
           ON CONFLICT (schedule_id) DO NOTHING""",
        rows,
    )
