"""The neighbour-index queue (sql/0006): first outcomes queue a task vector for the HNSW index.

The result transaction calls `enqueue`; the worker's merger calls `merge` in transactions of
its own; the neighbour query reads `queued_vectors` and compares them exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processors.postgres.embeddings import as_array
from processors.postgres.pool import Conn
from processors.search.nearest import unit_rows


@dataclass(frozen=True, slots=True)
class QueuedVectors:
    """Task vectors waiting for the index: ids and one row per id, unit length."""

    task_ids: tuple[str, ...]
    matrix: np.ndarray  # (len(task_ids), dimension), float32

    @classmethod
    def empty(cls, dimension: int) -> QueuedVectors:
        return cls((), np.zeros((0, dimension), dtype=np.float32))


# One statement: whether the queue is past the limit decides which of the two writes runs.
_ENQUEUE = """
    WITH backed_up AS (
        SELECT count(*) >= $2 AS yes FROM (SELECT 1 FROM task_index_queue LIMIT $2) AS q),
    queued AS (
        INSERT INTO task_index_queue (task_id, model)
        SELECT e.task_id, e.model FROM task_embeddings e, backed_up
        WHERE e.task_id = ANY($1::text[]) AND NOT e.has_outcome AND NOT backed_up.yes
        ON CONFLICT DO NOTHING
        RETURNING 1),
    indexed AS (
        UPDATE task_embeddings e SET has_outcome = true FROM backed_up
        WHERE e.task_id = ANY($1::text[]) AND NOT e.has_outcome AND backed_up.yes
        RETURNING 1)
    SELECT (SELECT count(*) FROM queued) AS queued, (SELECT count(*) FROM indexed) AS indexed"""


async def enqueue(conn: Conn, task_ids: Sequence[str], limit: int) -> tuple[int, int]:
    """Queue the vectors of these tasks that are not in the index yet. Past `limit` queued rows
    (the merger falls behind), index them here instead, so exact comparisons stay cheap.
    Returns (queued, indexed inline)."""
    if not task_ids:
        return 0, 0
    row = await conn.fetchrow(_ENQUEUE, list(task_ids), limit)
    assert row is not None  # an aggregate always returns one row
    return int(row["queued"]), int(row["indexed"])


async def merge(conn: Conn, limit: int) -> int:
    """Move up to `limit` queued vectors into the index, oldest first; returns how many.
    SKIP LOCKED: mergers of several workers take different rows instead of waiting."""
    async with conn.transaction():
        status = await conn.execute(
            """WITH picked AS (
                   DELETE FROM task_index_queue WHERE (task_id, model) IN (
                       SELECT task_id, model FROM task_index_queue
                       ORDER BY queued_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                   RETURNING task_id, model)
               UPDATE task_embeddings e SET has_outcome = true FROM picked p
               WHERE e.task_id = p.task_id AND e.model = p.model AND NOT e.has_outcome""",
            limit,
        )
    return _row_count(status)


async def queued_vectors(conn: Conn, model: str, dimension: int) -> QueuedVectors:
    rows = await conn.fetch(
        """SELECT q.task_id, e.embedding FROM task_index_queue q
           JOIN task_embeddings e ON e.task_id = q.task_id AND e.model = q.model
           WHERE q.model = $1 AND NOT e.has_outcome""",
        model,
    )
    if not rows:
        return QueuedVectors.empty(dimension)
    matrix = np.vstack([as_array(r["embedding"]) for r in rows])
    return QueuedVectors(tuple(r["task_id"] for r in rows), unit_rows(matrix))


async def queue_length(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM task_index_queue"))


def _row_count(status: str) -> int:
    """Rows a command touched, from its status tag ("INSERT 0 12", "UPDATE 3")."""
    return int(status.rsplit(" ", 1)[-1])
