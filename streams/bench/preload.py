"""Bulk preload of a task history straight into PostgreSQL, the fast way.

Rows go in with binary COPY (asyncpg `copy_records_to_table`, vectors through the pgvector
binary codec), and the model's HNSW index is built once after the load: a bulk build over
100k rows takes a fraction of the time that 100k one-row index inserts would.
Aggregates (`arm_stats`) are computed in SQL from the loaded outcomes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from processors.embedders.base import Embedder, Vector
from processors.pipeline.embedding import content_hash
from processors.postgres import bench_store
from processors.postgres.embedding_models import ensure_indexes
from processors.postgres.pool import Conn
from streams.bench.workload import HistoryTask

CHUNK = 5000


@dataclass(frozen=True, slots=True)
class PreloadReport:
    tasks: int
    outcomes: int
    load_s: float
    embed_s: float
    index_s: float
    method: str


async def load_history(
    conn: Conn,
    embedder: Embedder,
    history: Iterable[HistoryTask],
    *,
    hnsw_m: int,
    hnsw_ef_construction: int,
    on_progress: Callable[[int], None] | None = None,
) -> PreloadReport:
    """COPY tasks, vectors and outcomes in chunks, then aggregate and build the vector index."""
    loaded = outcomes = 0
    load_s = embed_s = 0.0
    chunk: list[HistoryTask] = []

    async def flush() -> None:
        nonlocal loaded, outcomes, load_s, embed_s
        started = time.perf_counter()
        vectors = await embedder.embed([t.description for t in chunk])
        embed_s += time.perf_counter() - started
        started = time.perf_counter()
        hashes = [content_hash(t.description) for t in chunk]
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
                for t, h in zip(chunk, hashes, strict=True)
            ],
        )  # fmt: skip
        await conn.copy_records_to_table(
            "task_embeddings",
            columns=["task_id", "model", "content_hash", "embedding", "has_outcome"],
            records=[
                (t.task_id, embedder.model_name, h, v, True)
                for t, h, v in zip(chunk, hashes, vectors, strict=True)
            ],
        )
        results = [o for t in chunk for o in t.outcomes]
        kinds = {t.task_id: t.kind for t in chunk}
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
                (f"{t.task_id}:preload", t.task_id, t.outcomes[0].agent, t.outcomes[0].model, 0.8, 0.5,
                 t.outcomes[0].duration_ms, t.outcomes[0].cost_usd, 0.8, False, False, embedder.model_name,
                 "[]", f"{t.task_id}-created")
                for t in chunk
            ],
        )  # fmt: skip
        load_s += time.perf_counter() - started
        loaded += len(chunk)
        outcomes += len(results)
        chunk.clear()
        if on_progress is not None:
            on_progress(loaded)

    for task in history:
        chunk.append(task)
        if len(chunk) >= CHUNK:
            await flush()
    if chunk:
        await flush()
    started = time.perf_counter()
    await bench_store.rebuild_arm_stats(conn)
    load_s += time.perf_counter() - started
    started = time.perf_counter()
    # The bulk build wants the whole graph in memory; parallel workers use the second core.
    await conn.execute("SET maintenance_work_mem = '1GB'")
    await conn.execute("SET max_parallel_maintenance_workers = 2")
    await ensure_indexes(
        conn, embedder.model_name, embedder.dimension, m=hnsw_m, ef_construction=hnsw_ef_construction
    )
    await conn.execute("RESET maintenance_work_mem")
    await conn.execute("RESET max_parallel_maintenance_workers")
    # Vacuumed now, or autovacuum visits 100k fresh rows in the middle of the measured phases.
    await conn.execute("VACUUM ANALYZE")
    index_s = time.perf_counter() - started
    return PreloadReport(
        tasks=loaded,
        outcomes=outcomes,
        load_s=round(load_s, 2),
        embed_s=round(embed_s, 2),
        index_s=round(index_s, 2),
        method="binary COPY in 5k-row chunks, arm_stats aggregated in SQL, HNSW index built after the load",
    )


async def load_messages(
    conn: Conn,
    messages: Sequence[tuple[str, str, str, str]],
    model: str,
    vectors: Sequence[Vector],
    *,
    occurred_at: datetime,
    event_id_prefix: str = "",
) -> None:
    """COPY (message_id, source, author, content) rows and their vectors of `model`, content
    hashes computed as the pipeline does (the search benchmark's corpus, search tests)."""
    hashes = [content_hash(text) for _, _, _, text in messages]
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
