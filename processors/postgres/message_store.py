"""messages: the stored messages, and the nearest-neighbour search that finds a new message's
near duplicates among them."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pgvector import Vector as PgVector

from processors.embedders.base import Vector
from processors.postgres.embedding_models import model_literal
from processors.postgres.pool import Conn

# ef_search of the duplicate search: plenty for LIMIT 2, half the work of the default.
NEAREST_EF_SEARCH = 40

# One row of `messages`: id, source, author, content, thread, task, occurred_at, content hash,
# the event that created it, the message it duplicates and how similar it is (None, None).
MessageRow = tuple[Any, ...]


def nearest_many_sql(model: str, dimension: int) -> str:
    """Each vector's two nearest indexed messages, for a batch's searches in one statement per
    chunk (one round trip instead of one per message). `indexed` is part of the partial index's
    predicate: without it, no index scan."""
    return f"""
        SELECT q.i, c.message_id, c.similarity
        FROM unnest($1::vector[]) WITH ORDINALITY AS q(v, i)
        CROSS JOIN LATERAL (
            SELECT message_id, 1 - (embedding::vector({dimension}) <=> q.v::vector({dimension})) AS similarity
            FROM message_embeddings WHERE model = {model_literal(model)} AND indexed
            ORDER BY embedding::vector({dimension}) <=> q.v::vector({dimension}) LIMIT 2
        ) c"""


async def nearest_many(conn: Conn, sql: str, vectors: Sequence[Vector]) -> list[list[tuple[str, float]]]:
    """Run `nearest_many_sql` in a transaction of its own (its SET LOCAL ends with it)."""
    out: list[list[tuple[str, float]]] = [[] for _ in vectors]
    async with conn.transaction():
        await conn.execute(f"SET LOCAL hnsw.ef_search = {NEAREST_EF_SEARCH}")
        # Wrapped: asyncpg would read a list of arrays as one two-dimensional array.
        rows = await conn.fetch(sql, [PgVector(v) for v in vectors])
    for row in rows:
        out[row["i"] - 1].append((row["message_id"], float(row["similarity"])))
    return out


async def store_messages(conn: Conn, rows: Sequence[MessageRow]) -> None:
    """Insert or update messages (a message id sent again with other content replaces it)."""
    await conn.executemany(
        """INSERT INTO messages (message_id, source, author, content, thread_id, task_id, occurred_at,
               content_hash, created_event_id, duplicate_of, duplicate_similarity)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
           ON CONFLICT (message_id) DO UPDATE SET source = EXCLUDED.source, author = EXCLUDED.author,
               content = EXCLUDED.content, thread_id = EXCLUDED.thread_id, task_id = EXCLUDED.task_id,
               content_hash = EXCLUDED.content_hash, created_event_id = EXCLUDED.created_event_id,
               duplicate_of = EXCLUDED.duplicate_of, duplicate_similarity = EXCLUDED.duplicate_similarity""",
        rows,
    )
