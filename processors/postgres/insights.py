"""Reads behind the insights: failures, recent executions and schedules, and arm activity."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import orjson

from processors.embedders.base import Vector
from processors.insights.arms import ArmActivity
from processors.insights.failures import FailedExecution, Matrix
from processors.insights.gaps import RecentTask
from processors.postgres.pool import Conn
from processors.postgres.stored_vectors import as_array
from processors.scheduling.types import Arm


@dataclass(frozen=True, slots=True)
class Watermark:
    """Where the last read of failures stopped: (recorded_at, event_id) of the newest one read."""

    recorded_at: datetime
    event_id: str


async def failures(
    conn: Conn, embedding_model: str, after: Watermark | None, limit: int, *, newest: bool = False
) -> list[tuple[FailedExecution, Vector, Watermark]]:
    """Failed executions with their task's vector, oldest first: the first `limit` after the
    watermark, or with `newest` the last `limit` of all."""
    order = "DESC" if newest else ""
    rows = await conn.fetch(
        f"""SELECT e.event_id, e.task_id, e.agent, e.model, coalesce(e.kind, '') AS kind, e.recorded_at,
                  coalesce(e.error_message, '') AS error_message, t.description, v.embedding
           FROM executions e
           JOIN tasks t ON t.task_id = e.task_id
           JOIN task_embeddings v ON v.task_id = e.task_id AND v.model = $1
           WHERE NOT e.success AND ($2::timestamptz IS NULL OR (e.recorded_at, e.event_id) > ($2, $3))
           ORDER BY e.recorded_at {order}, e.event_id {order} LIMIT $4""",
        embedding_model,
        after.recorded_at if after else None,
        after.event_id if after else "",
        limit,
    )
    if newest:
        rows = list(reversed(rows))
    return [
        (
            FailedExecution(
                r["event_id"],
                r["task_id"],
                Arm(r["agent"], r["model"]),
                r["kind"],
                r["description"],
                r["error_message"],
            ),
            as_array(r["embedding"]),
            Watermark(r["recorded_at"], r["event_id"]),
        )
        for r in rows
    ]


async def recent_executions(
    conn: Conn, embedding_model: str, limit: int
) -> tuple[list[tuple[Arm, bool]], Matrix]:
    """The latest `limit` executions: (arm, success) and their task vectors as one matrix."""
    rows = await conn.fetch(
        """SELECT e.agent, e.model, e.success, v.embedding FROM executions e
           JOIN task_embeddings v ON v.task_id = e.task_id AND v.model = $1
           ORDER BY e.recorded_at DESC LIMIT $2""",
        embedding_model,
        limit,
    )
    if not rows:
        return [], np.zeros((0, 0), dtype=np.float32)
    return (
        [(Arm(r["agent"], r["model"]), r["success"]) for r in rows],
        np.vstack([as_array(r["embedding"]) for r in rows]).astype(np.float32),
    )


async def arm_totals(conn: Conn) -> dict[Arm, tuple[int, int]]:
    """arm -> (attempts, failures) over all tasks."""
    rows = await conn.fetch("SELECT agent, model, attempts, successes FROM arm_stats WHERE scope = '*'")
    return {Arm(r["agent"], r["model"]): (r["attempts"], r["attempts"] - r["successes"]) for r in rows}


async def recent_tasks(
    conn: Conn, embedding_model: str, since: datetime, limit: int
) -> tuple[list[RecentTask], Matrix]:
    """Tasks stored since `since` (wall clock: replayed history counts as recent) with the predicted success of every candidate arm (their
    latest schedule's alternatives) and their vectors."""
    rows = await conn.fetch(
        """SELECT t.task_id, coalesce(t.kind, '') AS kind, t.description, p.alternatives::text AS alternatives,
                  v.embedding
           FROM tasks t
           JOIN task_embeddings v ON v.task_id = t.task_id AND v.model = $1
           JOIN LATERAL (SELECT alternatives FROM predictions p WHERE p.task_id = t.task_id
                         ORDER BY p.created_at DESC LIMIT 1) p ON true
           WHERE t.inserted_at >= $2 ORDER BY t.inserted_at DESC LIMIT $3""",
        embedding_model,
        since,
        limit,
    )
    tasks = [
        RecentTask(
            r["task_id"],
            r["kind"],
            r["description"],
            {
                Arm(a["agent"], a["model"]): float(a["success_probability"])
                for a in orjson.loads(r["alternatives"])
            },
        )
        for r in rows
    ]
    if not rows:
        return tasks, np.zeros((0, 0), dtype=np.float32)
    return tasks, np.vstack([as_array(r["embedding"]) for r in rows]).astype(np.float32)


_ACTIVITY = """
WITH configured AS (SELECT DISTINCT agent, model FROM tier_defaults),
chosen AS (SELECT agent, model, count(*) AS schedules, max(created_at) AS last_scheduled_at
           FROM predictions GROUP BY agent, model),
done AS (SELECT agent, model, count(*) AS outcomes, count(*) FILTER (WHERE success) AS successes,
                coalesce(sum(cost_usd), 0) AS cost_sum_usd, count(cost_usd) AS cost_n,
                count(*) FILTER (WHERE recorded_at >= $1) AS recent_outcomes
         FROM executions GROUP BY agent, model),
pending AS (SELECT p.agent, p.model, count(*) AS pending FROM tasks t
            JOIN LATERAL (SELECT agent, model FROM predictions p WHERE p.task_id = t.task_id
                          ORDER BY p.created_at DESC LIMIT 1) p ON true
            WHERE t.status = 'pending' GROUP BY p.agent, p.model),
recent AS (SELECT alternatives FROM predictions WHERE created_at >= $2),
candidates AS (SELECT a ->> 'agent' AS agent, a ->> 'model' AS model, count(*) AS candidate_in
               FROM recent, jsonb_array_elements(alternatives) a GROUP BY 1, 2),
cheapest AS (SELECT alternatives -> 0 ->> 'agent' AS agent, alternatives -> 0 ->> 'model' AS model,
                    count(*) AS n
             FROM recent WHERE (alternatives -> 0 ->> 'meets_target')::boolean GROUP BY 1, 2),
arms AS (SELECT agent, model FROM configured UNION SELECT agent, model FROM chosen
         UNION SELECT agent, model FROM done)
SELECT a.agent, a.model, (c.agent IS NOT NULL) AS configured,
       coalesce(ch.schedules, 0) AS schedules, ch.last_scheduled_at,
       coalesce(d.outcomes, 0) AS outcomes, coalesce(d.successes, 0) AS successes,
       coalesce(d.cost_sum_usd, 0) AS cost_sum_usd, coalesce(d.cost_n, 0) AS cost_n,
       coalesce(d.recent_outcomes, 0) AS recent_outcomes, coalesce(p.pending, 0) AS pending,
       coalesce(k.candidate_in, 0) AS candidate_in, coalesce(m.n, 0) AS cheapest_meeting_target
FROM arms a
LEFT JOIN configured c USING (agent, model) LEFT JOIN chosen ch USING (agent, model)
LEFT JOIN done d USING (agent, model) LEFT JOIN pending p USING (agent, model)
LEFT JOIN candidates k USING (agent, model) LEFT JOIN cheapest m USING (agent, model)
ORDER BY a.agent, a.model"""


async def arm_activity(
    conn: Conn, now: datetime, throughput_window: timedelta, recent: timedelta
) -> list[ArmActivity]:
    rows = await conn.fetch(_ACTIVITY, now - throughput_window, now - recent)
    return [
        ArmActivity(
            arm=Arm(r["agent"], r["model"]),
            configured=r["configured"],
            schedules=r["schedules"],
            outcomes=r["outcomes"],
            successes=r["successes"],
            cost_sum_usd=float(r["cost_sum_usd"]),
            cost_n=r["cost_n"],
            pending=r["pending"],
            recent_outcomes=r["recent_outcomes"],
            last_scheduled_at=r["last_scheduled_at"],
            candidate_in=r["candidate_in"],
            cheapest_meeting_target=r["cheapest_meeting_target"],
        )
        for r in rows
    ]
