"""What the benchmarks (streams/bench/) read and write directly: the consumed total, the arm
statistics rebuilt after a bulk preload, the search benchmark's corpus and exact scans, and what
the reports say about the server. Not on any product path (the bulk loads: bulk_load.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.embedders.base import Vector
from processors.postgres.embedding_models import model_literal
from processors.postgres.knowledge import GLOBAL_SCOPE
from processors.postgres.pool import Conn


async def consumed(conn: Conn, group: str, topics: Sequence[str]) -> int:
    """Records of `topics` the group has consumed (fresh topics start at offset 0)."""
    total = await conn.fetchval(
        "SELECT sum(next_offset) FROM consumer_positions WHERE group_id = $1 AND topic = ANY($2::text[])",
        group,
        list(topics),
    )
    return int(total or 0)


async def rebuild_arm_stats(conn: Conn) -> None:
    """arm_stats from task_arm_outcomes, globally (GLOBAL_SCOPE) and per kind: what the results stream
    would have added up, in one statement after a bulk preload."""
    await conn.execute(
        """INSERT INTO arm_stats (scope, agent, model, attempts, successes, duration_sum_ms, duration_n,
               cost_sum_usd, cost_n)
           SELECT scope, agent, model, sum(attempts), sum(successes), sum(duration_sum_ms), sum(duration_n),
                  sum(cost_sum_usd), sum(cost_n)
           FROM (SELECT o.*, s.scope FROM task_arm_outcomes o JOIN tasks t USING (task_id),
                 LATERAL (VALUES ($1), (t.kind)) AS s(scope) WHERE s.scope IS NOT NULL) x
           GROUP BY scope, agent, model
           ON CONFLICT (scope, agent, model) DO UPDATE SET attempts = EXCLUDED.attempts,
               successes = EXCLUDED.successes, duration_sum_ms = EXCLUDED.duration_sum_ms,
               duration_n = EXCLUDED.duration_n, cost_sum_usd = EXCLUDED.cost_sum_usd, cost_n = EXCLUDED.cost_n""",
        GLOBAL_SCOPE,
    )


async def loaded_corpus(conn: Conn, meta: str) -> str | None:
    """The report of the search corpus loaded under `meta`, if that corpus is the one stored."""
    await conn.execute("CREATE TABLE IF NOT EXISTS bench_search_meta (meta text PRIMARY KEY, report jsonb)")
    report: str | None = await conn.fetchval("SELECT report FROM bench_search_meta WHERE meta = $1", meta)
    return report


async def clear_corpus(conn: Conn) -> None:
    await conn.execute("TRUNCATE messages CASCADE; DELETE FROM bench_search_meta")


async def remember_corpus(conn: Conn, meta: str, report_json: str) -> None:
    await conn.execute("INSERT INTO bench_search_meta VALUES ($1, $2::jsonb)", meta, report_json)


async def message_vectors(conn: Conn, model: str) -> list[Any]:
    return list(
        await conn.fetch("SELECT message_id, embedding FROM message_embeddings WHERE model = $1", model)
    )


async def message_sources(conn: Conn) -> dict[str, str]:
    return {r["message_id"]: r["source"] for r in await conn.fetch("SELECT message_id, source FROM messages")}


async def exact_top10(conn: Conn, model: str, dimension: int, vector: Vector) -> list[Any]:
    """The 10 nearest messages by a full scan (no index): the ground truth of recall."""
    return list(
        await conn.fetch(
            f"""WITH s AS MATERIALIZED (SELECT message_id, embedding::vector({dimension}) <=> $1::vector({dimension}) AS d
                FROM message_embeddings WHERE model = {model_literal(model)})
                SELECT message_id FROM s ORDER BY d LIMIT 10""",
            vector,
        )
    )


async def server_settings(conn: Conn) -> dict[str, str]:
    """The server's version and shared buffers, as the search benchmark's report names them."""
    return {
        "postgres": await conn.fetchval("SHOW server_version"),
        "shared_buffers": await conn.fetchval("SHOW shared_buffers"),
    }


async def backend_pid(conn: Conn) -> int:
    """The server process serving this connection (its parent is the postmaster)."""
    return int(await conn.fetchval("SELECT pg_backend_pid()"))


async def learned_outcomes(conn: Conn) -> int:
    """Outcomes the learned layer has learned from, over every embedding model (its stacker
    learns from each one)."""
    value = await conn.fetchval(
        "SELECT coalesce(sum(outcomes), 0) FROM learned_models WHERE component = 'stacker'"
    )
    return int(value or 0)


async def outcomes_with_layer_inputs(conn: Conn) -> int:
    """Executions the learned layer can learn from, found independently of its own lookup: the
    task's latest schedule weighed the arm that ran (chosen, or among its alternatives) and stored
    the layer's inputs for it (learned_updates.LearnedLayer.queue)."""
    value = await conn.fetchval(
        """SELECT count(*) FROM executions e
           JOIN LATERAL (SELECT p.schedule_id, p.agent, p.model, p.alternatives FROM predictions p
                         WHERE p.task_id = e.task_id ORDER BY p.created_at DESC LIMIT 1) p ON true
           JOIN learned_features f
             ON f.schedule_id = p.schedule_id AND f.agent = e.agent AND f.model = e.model
           WHERE (p.agent = e.agent AND p.model = e.model)
              OR EXISTS (SELECT 1 FROM jsonb_array_elements(p.alternatives) a
                         WHERE a ->> 'agent' = e.agent AND a ->> 'model' = e.model)"""
    )
    return int(value or 0)
