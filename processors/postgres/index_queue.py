"""The index queues: vectors waiting for their HNSW index, merged off the critical path.

Tasks (sql/0006): the result transaction calls `enqueue` for first outcomes; the neighbour
query reads `queued_vectors` and compares them exactly. Messages (sql/0008): a message batch
stores its vectors unindexed unless `QueuedMessages` (which the duplicate check reads)
holds the limit already. The worker's merger calls `merge` and `merge_messages` in
transactions of their own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processors.embedders.base import Vector
from processors.postgres.pool import Conn, rows_affected
from processors.postgres.stored_vectors import as_array
from processors.search.nearest import unit_rows


@dataclass(frozen=True, slots=True)
class QueuedVectors:
    """Vectors waiting for an index: ids (of tasks or messages) and one row per id, unit length."""

    ids: tuple[str, ...]
    matrix: np.ndarray  # (len(ids), dimension), float32

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
    return rows_affected(status)


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


async def merge_messages(conn: Conn, limit: int) -> int:
    """Index up to `limit` queued message vectors, oldest first; returns how many."""
    async with conn.transaction():
        status = await conn.execute(
            """UPDATE message_embeddings e SET indexed = true
               WHERE (e.message_id, e.model) IN (
                   SELECT message_id, model FROM message_embeddings WHERE NOT indexed
                   ORDER BY embedded_at LIMIT $1 FOR UPDATE SKIP LOCKED)""",
            limit,
        )
    return rows_affected(status)


class QueuedMessages:
    """The message vectors waiting for the index, for the duplicate check of each batch.

    A batch reads only the ids and content hashes of the queue: the vectors this worker
    queued itself are kept from its own batches, and only others' are fetched. Reading the
    vectors of the whole queue cost the worker 1.1 ms of CPU per batch at 200 queued rows and
    8 ms at 2,000, the keys 0.16 and 0.9 ms. At 500 messages/s the queue held 30-170 rows and
    batches are small, so that cost was paid per few messages."""

    def __init__(self, model: str, dimension: int) -> None:
        self.model = model
        self.dimension = dimension
        self._known: dict[str, tuple[bytes, np.ndarray]] = {}  # id -> (content hash, unit vector)

    def __len__(self) -> int:
        """Vectors queued for the model at the last read, with those remembered since: a batch
        reads the queue for its duplicate check, so the bound on the queue needs no query."""
        return len(self._known)

    def remember(self, rows: Sequence[tuple[str, bytes, Vector]]) -> None:
        """Vectors a batch stores queued. Kept until a read finds them indexed (or never queued,
        when the batch rolled back)."""
        if rows:
            unit = unit_rows(np.vstack([vector for _, _, vector in rows]).astype(np.float32))
            for (message_id, content_hash, _), row in zip(rows, unit, strict=True):
                self._known[message_id] = (content_hash, row)

    async def read(self, conn: Conn) -> QueuedVectors:
        keys = await conn.fetch(
            "SELECT message_id, content_hash FROM message_embeddings WHERE model = $1 AND NOT indexed",
            self.model,
        )
        current = {r["message_id"]: bytes(r["content_hash"]) for r in keys}
        missing = [m for m, h in current.items() if m not in self._known or self._known[m][0] != h]
        if missing:
            # Rows indexed since the first read are left out: the index search finds them.
            fetched = await conn.fetch(
                """SELECT message_id, content_hash, embedding FROM message_embeddings
                   WHERE model = $1 AND message_id = ANY($2::text[]) AND NOT indexed""",
                self.model,
                missing,
            )
            self.remember(
                [(r["message_id"], bytes(r["content_hash"]), as_array(r["embedding"])) for r in fetched]
            )
        self._known = {m: self._known[m] for m in current if m in self._known}
        if not self._known:
            return QueuedVectors.empty(self.dimension)
        return QueuedVectors(tuple(self._known), np.vstack([row for _, row in self._known.values()]))


async def message_queue_length(conn: Conn) -> int:
    return int(await conn.fetchval("SELECT count(*) FROM message_embeddings WHERE NOT indexed"))


async def queues_empty(conn: Conn) -> bool:
    """Whether no task or message vector waits for its index."""
    return not await conn.fetchval(
        """SELECT EXISTS (SELECT 1 FROM task_index_queue)
               OR EXISTS (SELECT 1 FROM message_embeddings WHERE NOT indexed)"""
    )
