"""executions, task_arm_outcomes, arm_stats, the tasks' outcome columns, held_results and
arm_profiles: what an execution result changes, always inside the caller's transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.postgres.pool import Conn

# Namespace of the transaction-level advisory locks taken per task id (any constant works).
_TASK_LOCK_SPACE = 0x7A5C7A51

# executions: event_id, task_id, kind, agent, model, success, duration_ms, cost_usd,
# error_message, finished_at, occurred_at.
ExecutionRow = tuple[Any, ...]


async def lock_tasks(conn: Conn, task_ids: Sequence[str]) -> None:
    """Serialise "is the task known? else hold the result" against "store the task, then release
    held results" across workers. Without it a result checked while its task is being inserted
    by another worker is held after that worker looked for held results, and waits forever."""
    if task_ids:
        await conn.execute(
            """SELECT count(pg_advisory_xact_lock($1, h))
               FROM (SELECT DISTINCT hashtext(t) AS h FROM unnest($2::text[]) AS t ORDER BY 1) AS ids""",
            _TASK_LOCK_SPACE,
            list(task_ids),
        )


async def task_kinds(conn: Conn, task_ids: Sequence[str]) -> dict[str, str | None]:
    """The kind of each known task among `task_ids` (a task without a kind maps to None)."""
    rows = await conn.fetch("SELECT task_id, kind FROM tasks WHERE task_id = ANY($1::text[])", list(task_ids))
    return {row["task_id"]: row["kind"] for row in rows}


async def hold(conn: Conn, rows: Sequence[tuple[str, str, bytes, str, int, int]]) -> None:
    """(event_id, task_id, payload, topic, partition, offset) of results whose task is unknown."""
    await conn.executemany(
        """INSERT INTO held_results (event_id, task_id, payload, topic, partition, "offset")
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING""",
        rows,
    )


async def take_held_for(conn: Conn, task_ids: Sequence[str]) -> list[Any]:
    """Delete and return the results held for these tasks."""
    return list(
        await conn.fetch(
            """DELETE FROM held_results WHERE task_id = ANY($1::text[])
               RETURNING payload, topic, partition, "offset" """,
            list(task_ids),
        )
    )


async def held_longer_than(conn: Conn, seconds: float, limit: int) -> list[Any]:
    """(event_id, task_id) of the results held longest, past `seconds`."""
    return list(
        await conn.fetch(
            """SELECT event_id, task_id FROM held_results WHERE held_at < now() - make_interval(secs => $1)
               ORDER BY held_at LIMIT $2""",
            seconds,
            limit,
        )
    )


async def take_held(conn: Conn, event_ids: Sequence[str]) -> list[Any]:
    """Delete and return these held results (those another worker took meanwhile are absent)."""
    return list(
        await conn.fetch(
            """DELETE FROM held_results WHERE event_id = ANY($1::text[])
               RETURNING event_id, task_id, payload, topic, partition, "offset", held_at""",
            list(event_ids),
        )
    )


async def store_executions(conn: Conn, rows: Sequence[ExecutionRow]) -> None:
    await conn.executemany(
        """INSERT INTO executions (event_id, task_id, kind, agent, model, success, duration_ms, cost_usd,
               error_message, finished_at, occurred_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (event_id) DO NOTHING""",
        rows,
    )


async def add_task_arm_outcomes(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """(task_id, agent, model, attempts, successes, duration_sum_ms, duration_n,
    cost_sum_usd, cost_n, last_finished_at), sorted by key: concurrent workers lock
    rows in the same order, so they cannot deadlock."""
    await conn.executemany(
        """INSERT INTO task_arm_outcomes (task_id, agent, model, attempts, successes, duration_sum_ms,
               duration_n, cost_sum_usd, cost_n, last_finished_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           ON CONFLICT (task_id, agent, model) DO UPDATE SET
               attempts = task_arm_outcomes.attempts + EXCLUDED.attempts,
               successes = task_arm_outcomes.successes + EXCLUDED.successes,
               duration_sum_ms = task_arm_outcomes.duration_sum_ms + EXCLUDED.duration_sum_ms,
               duration_n = task_arm_outcomes.duration_n + EXCLUDED.duration_n,
               cost_sum_usd = task_arm_outcomes.cost_sum_usd + EXCLUDED.cost_sum_usd,
               cost_n = task_arm_outcomes.cost_n + EXCLUDED.cost_n,
               last_finished_at = GREATEST(task_arm_outcomes.last_finished_at, EXCLUDED.last_finished_at)""",
        rows,
    )


async def add_arm_stats(conn: Conn, rows: Sequence[tuple[Any, ...]]) -> None:
    """(scope, agent, model, attempts, ..., cost_n), sorted by key like add_task_arm_outcomes."""
    await conn.executemany(
        """INSERT INTO arm_stats (scope, agent, model, attempts, successes, duration_sum_ms, duration_n,
               cost_sum_usd, cost_n) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
           ON CONFLICT (scope, agent, model) DO UPDATE SET
               attempts = arm_stats.attempts + EXCLUDED.attempts,
               successes = arm_stats.successes + EXCLUDED.successes,
               duration_sum_ms = arm_stats.duration_sum_ms + EXCLUDED.duration_sum_ms,
               duration_n = arm_stats.duration_n + EXCLUDED.duration_n,
               cost_sum_usd = arm_stats.cost_sum_usd + EXCLUDED.cost_sum_usd,
               cost_n = arm_stats.cost_n + EXCLUDED.cost_n, updated_at = now()""",
        rows,
    )


async def add_task_outcomes(conn: Conn, rows: Sequence[tuple[str, int, int, Any]]) -> None:
    """(task_id, attempts, successes, last_finished_at): a task succeeded once any attempt did."""
    await conn.executemany(
        """UPDATE tasks SET attempts = attempts + $2, successes = successes + $3,
               status = CASE WHEN successes + $3 > 0 THEN 'succeeded' ELSE 'failed' END,
               last_outcome_at = GREATEST(last_outcome_at, $4)
           WHERE task_id = $1""",
        rows,
    )


async def save_profiles(conn: Conn, embedding_model: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """(agent, model, outcome, vector, weight) of the adapted arm profiles."""
    await conn.executemany(
        """INSERT INTO arm_profiles (agent, model, embedding_model, outcome, vector, weight)
           VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (agent, model, embedding_model, outcome) DO UPDATE
           SET vector = EXCLUDED.vector, weight = EXCLUDED.weight, updated_at = now()""",
        [
            (agent, model, embedding_model, outcome, vector, weight)
            for agent, model, outcome, vector, weight in rows
        ],
    )
