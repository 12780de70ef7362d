"""Bulk preload of a task history straight into PostgreSQL, the fast way.

Rows go in with binary COPY in chunks (processors/postgres/bulk_load.py), embedded here chunk by
chunk, and the model's HNSW index is built once after the load: a bulk build over
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
from processors.postgres import bench_store, bulk_load
from processors.postgres.bulk_load import HistoryTask
from processors.postgres.pool import Conn
from processors.scheduling import learned
from processors.scheduling.types import Arm

CHUNK = 5000


def layer_inputs() -> tuple[float, ...]:
    """What a schedule decided with the learned layer on stores for each arm it weighed: here the
    inputs of the preload prediction, the base rate and no other evidence (the values do not
    change what an outcome costs the layer, only that it teaches it)."""
    p = bulk_load.PRELOAD_SUCCESS
    return learned.features(p, p, p, p, 0.0, 0.0, 0.0)


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
    arms: Sequence[Arm] = (),
    features: Sequence[float] | None = None,
) -> PreloadReport:
    """COPY tasks, vectors and outcomes in chunks, then aggregate and build the vector index.
    `arms` and `features`: the arms each task's preload schedule weighed and the learned layer's
    inputs it stored for each (bulk_load.copy_history)."""
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
        written = await bulk_load.copy_history(
            conn, embedder.model_name, chunk, hashes, vectors, [(a.agent, a.model) for a in arms], features
        )
        load_s += time.perf_counter() - started
        loaded += len(chunk)
        outcomes += written
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
    # Parallel workers use the second core of the build.
    await bulk_load.build_index_in_bulk(
        conn,
        embedder.model_name,
        embedder.dimension,
        parallel_workers=2,
        m=hnsw_m,
        ef_construction=hnsw_ef_construction,
    )
    # Vacuumed now, or autovacuum visits 100k fresh rows in the middle of the measured phases.
    await bulk_load.vacuum_analyze(conn)
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
    await bulk_load.copy_messages(
        conn, messages, model, hashes, vectors, occurred_at=occurred_at, event_id_prefix=event_id_prefix
    )
