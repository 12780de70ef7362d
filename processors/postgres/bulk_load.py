"""Bulk loads of the benchmarks (streams/bench/): a task history and a message corpus written
with binary COPY (asyncpg `copy_records_to_table`, vectors through the pgvector binary codec),
the vector indexes built once after the load, and the statistics refreshed. Not on any product
path: the pipeline writes the same tables row by row (task_store, outcomes, message_store)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache

from processors.contracts import ExecutionResult, encode
from processors.contracts.events import ArmAlternative
from processors.embedders.base import Vector
from processors.postgres.embedding_models import ensure_indexes
from processors.postgres.pool import Conn

PRELOAD_SUCCESS = 0.8  # the success probability of every preload prediction
# Tables a bulk load writes: the only ones `analyze` accepts by name.
LOADED_TABLES = (
    "tasks", "task_embeddings", "task_arm_outcomes", "executions", "predictions", "learned_features", "messages",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class HistoryTask:
    """A past task with the outcomes it had: one history row of the benchmark's preload."""

    task_id: str
    description: str
    kind: str
    priority: int
    occurred_at: datetime
    outcomes: tuple[ExecutionResult, ...]


async def copy_history(
    conn: Conn,
    model: str,
    tasks: Sequence[HistoryTask],
    hashes: Sequence[bytes],
    vectors: Sequence[Vector],
    arms: Sequence[tuple[str, str]] = (),
    features: Sequence[float] | None = None,
) -> int:
    """COPY the tasks (with their content hashes and vectors of `model`), their outcomes as
    executions and per-arm sums, and one preload prediction each; returns the outcomes written.

    `arms`: (agent, model) of every arm each preload schedule weighed, listed as its alternatives
    after the arm it chose (the task's first outcome's), as a decision lists them, so outcomes on
    any of them are scored. `features`: the learned layer's inputs stored with every preload
    schedule for each of those arms, as a schedule decided with the layer on stores them; an
    outcome of such a task then teaches the layer, as in production."""
    await conn.copy_records_to_table(
        "tasks",
        columns=[
            "task_id", "description", "kind", "priority", "occurred_at", "content_hash", "status",
            "attempts", "successes", "last_outcome_at", "created_event_id",
        ],
        records=[
            (
                t.task_id, t.description, t.kind, t.priority, t.occurred_at, h,
                "succeeded" if any(o.success for o in t.outcomes) else "failed",
                len(t.outcomes), sum(o.success for o in t.outcomes),
                max(o.finished_at for o in t.outcomes), f"{t.task_id}-created",
            )
            for t, h in zip(tasks, hashes, strict=True)
        ],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "task_embeddings",
        columns=["task_id", "model", "content_hash", "embedding", "has_outcome"],
        records=[(t.task_id, model, h, v, True) for t, h, v in zip(tasks, hashes, vectors, strict=True)],
    )
    results = [o for t in tasks for o in t.outcomes]
    kinds = {t.task_id: t.kind for t in tasks}
    await conn.copy_records_to_table(
        "task_arm_outcomes",
        columns=[
            "task_id", "agent", "model", "attempts", "successes", "duration_sum_ms", "duration_n",
            "cost_sum_usd", "cost_n", "last_finished_at",
        ],
        records=[
            (o.task_id, o.agent, o.model, 1, int(o.success), o.duration_ms or 0.0,
             int(o.duration_ms is not None), o.cost_usd or 0.0, int(o.cost_usd is not None), o.finished_at)
            for o in results
        ],
    )  # fmt: skip
    await conn.copy_records_to_table(
        "executions",
        columns=[
            "event_id", "task_id", "kind", "agent", "model", "success", "duration_ms", "cost_usd",
            "error_message", "finished_at", "occurred_at",
        ],
        records=[
            (o.event_id, o.task_id, kinds[o.task_id], o.agent, o.model, o.success, o.duration_ms,
             o.cost_usd, o.error_message, o.finished_at, o.occurred_at)
            for o in results
        ],
    )  # fmt: skip
    # Every history task was scheduled once: outcomes of the measured phases are scored
    # against these (live accuracy), as in production, instead of finding no prediction.
    await conn.copy_records_to_table(
        "predictions",
        columns=[
            "schedule_id", "task_id", "agent", "model", "success_probability", "confidence",
            "predicted_duration_ms", "expected_cost_usd", "success_target", "cold_start", "exploration",
            "embedding_model", "alternatives", "source_event_id",
        ],
        records=[
            (f"{t.task_id}:preload", t.task_id, t.outcomes[0].agent, t.outcomes[0].model, PRELOAD_SUCCESS, 0.5,
             t.outcomes[0].duration_ms, t.outcomes[0].cost_usd, PRELOAD_SUCCESS, False, False, model,
             _alternatives(t, arms), f"{t.task_id}-created")
            for t in tasks
        ],
    )  # fmt: skip
    if features is not None:
        await conn.copy_records_to_table(
            "learned_features",
            columns=["schedule_id", "agent", "model", "features"],
            records=[
                (f"{t.task_id}:preload", agent, arm_model, list(features))
                for t in tasks
                for agent, arm_model in arms
            ],
        )
    return len(results)


def _alternatives(task: HistoryTask, arms: Sequence[tuple[str, str]]) -> str:
    """The preload schedule's alternatives, encoded as the pipeline stores a decision's: the
    chosen arm first, then the others."""
    chosen = (task.outcomes[0].agent, task.outcomes[0].model)
    return _alternatives_json(chosen, tuple(arms))


@cache
def _alternatives_json(chosen: tuple[str, str], arms: tuple[tuple[str, str], ...]) -> str:
    """One encoding per chosen arm (a handful), not one per preloaded task."""
    ordered = [chosen, *(arm for arm in arms if arm != chosen)] if arms else []
    return encode(
        [
            ArmAlternative(
                agent=agent, model=model, success_probability=PRELOAD_SUCCESS, confidence=0.5,
                predicted_duration_ms=None, expected_cost_usd=None, evidence=0.0, meets_target=True,
                score=0.0,
            )
            for agent, model in ordered
        ]
    ).decode()  # fmt: skip


async def copy_messages(
    conn: Conn,
    messages: Sequence[tuple[str, str, str, str]],
    model: str,
    hashes: Sequence[bytes],
    vectors: Sequence[Vector],
    *,
    occurred_at: datetime,
    event_id_prefix: str = "",
) -> None:
    """COPY (message_id, source, author, content) rows with their content hashes, and their
    vectors of `model`."""
    await conn.copy_records_to_table(
        "messages",
        records=[
            (message_id, source, author, text, occurred_at, h, event_id_prefix + message_id)
            for (message_id, source, author, text), h in zip(messages, hashes, strict=True)
        ],
        columns=[
            "message_id",
            "source",
            "author",
            "content",
            "occurred_at",
            "content_hash",
            "created_event_id",
        ],
    )
    await conn.copy_records_to_table(
        "message_embeddings",
        records=[
            (message_id, model, h, v)
            for (message_id, *_), h, v in zip(messages, hashes, vectors, strict=True)
        ],
        columns=["message_id", "model", "content_hash", "embedding"],
    )


async def build_index_in_bulk(
    conn: Conn,
    model: str,
    dimension: int,
    *,
    parallel_workers: int,
    m: int | None = None,
    ef_construction: int | None = None,
) -> list[str]:
    """The model's vector indexes (embedding_models.ensure_indexes) built over loaded tables, with
    the session settings a bulk build wants: the whole graph in memory, and parallel workers on
    the other cores. The settings are reset afterwards; returns the indexes created."""
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute(f"SET max_parallel_maintenance_workers = {int(parallel_workers)}")
    try:
        return await ensure_indexes(conn, model, dimension, m=m, ef_construction=ef_construction)
    finally:
        await conn.execute("RESET maintenance_work_mem")
        await conn.execute("RESET max_parallel_maintenance_workers")


async def analyze(conn: Conn, table: str | None = None) -> None:
    """Refresh the planner's statistics of one loaded table, or of the whole database."""
    if table is None:
        await conn.execute("ANALYZE")
        return
    if table not in LOADED_TABLES:
        raise ValueError(f"not a bulk-loaded table: {table!r}")
    await conn.execute(f"ANALYZE {table}")


async def vacuum_analyze(conn: Conn) -> None:
    """Vacuum and analyze the whole database: done after a load, or autovacuum visits the fresh
    rows in the middle of whatever is measured next."""
    await conn.execute("VACUUM ANALYZE")
