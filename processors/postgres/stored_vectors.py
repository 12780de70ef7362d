"""Stored vectors: reuse by content hash, insert, usage accounting."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import numpy as np

from processors.embedders.base import Vector
from processors.postgres.pool import Conn


def as_array(value: object) -> Vector:
    """float32 numpy array from what the pgvector codec returns (a Vector, or a list)."""
    to_numpy = getattr(value, "to_numpy", None)
    array = to_numpy() if to_numpy is not None else value
    return np.asarray(array, dtype=np.float32)


_TABLES = {"task": ("task_embeddings", "task_id"), "message": ("message_embeddings", "message_id")}


async def vectors_by_hash(conn: Conn, kind: str, model: str, hashes: Sequence[bytes]) -> dict[bytes, Vector]:
    """Vectors already computed for the same text, so unchanged text is never embedded twice."""
    if not hashes:
        return {}
    table, _ = _TABLES[kind]
    rows = await conn.fetch(
        f"""SELECT DISTINCT ON (content_hash) content_hash, embedding FROM {table}
            WHERE model = $1 AND content_hash = ANY($2::bytea[])""",
        model,
        list(set(hashes)),
    )
    return {bytes(r["content_hash"]): as_array(r["embedding"]) for r in rows}


async def store_vectors(
    conn: Conn,
    kind: str,
    model: str,
    rows: Sequence[tuple[str, bytes, Vector]],
    *,
    queue_messages: bool = False,
) -> None:
    """Upsert (id, content_hash, vector) for one model. `queue_messages`: message vectors wait
    for the index merger (sql/0008) instead of entering the HNSW index in this transaction."""
    table, id_col = _TABLES[kind]
    if kind == "task":
        # A task vector enters the neighbour index only once the task has an outcome (sql/0005);
        # a vector of a task that already has one (a new model, a backfill) goes in at once.
        flag, value, on_update = (
            "has_outcome",
            "EXISTS (SELECT 1 FROM task_arm_outcomes o WHERE o.task_id = $1)",
            "",
        )
    else:
        # A changed vector leaves the index with its old version and waits like a new one.
        flag, value, on_update = "indexed", str(not queue_messages).lower(), ", indexed = EXCLUDED.indexed"
    await conn.executemany(
        f"""INSERT INTO {table} ({id_col}, model, content_hash, embedding, {flag})
            VALUES ($1, $2, $3, $4, {value})
            ON CONFLICT ({id_col}, model) DO UPDATE
            SET content_hash = EXCLUDED.content_hash, embedding = EXCLUDED.embedding, embedded_at = now(){on_update}""",
        [(row_id, model, content_hash, vector) for row_id, content_hash, vector in rows],
    )


async def vectors_for(conn: Conn, kind: str, model: str, ids: Sequence[str]) -> dict[str, Vector]:
    table, id_col = _TABLES[kind]
    rows = await conn.fetch(
        f"SELECT {id_col} AS id, embedding FROM {table} WHERE model = $1 AND {id_col} = ANY($2::text[])",
        model,
        list(ids),
    )
    return {r["id"]: as_array(r["embedding"]) for r in rows}


async def record_usage(conn: Conn, provider: str, model: str, texts: int, tokens: int, requests: int) -> None:
    await conn.execute(
        """INSERT INTO embedding_usage (day, provider, model, texts, tokens, requests) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (day, provider, model) DO UPDATE SET texts = embedding_usage.texts + EXCLUDED.texts,
           tokens = embedding_usage.tokens + EXCLUDED.tokens, requests = embedding_usage.requests + EXCLUDED.requests""",
        date.today(),
        provider,
        model,
        texts,
        tokens,
        requests,
    )
