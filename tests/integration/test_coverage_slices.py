"""The worker's sliced coverage count agrees with the one-statement count."""

from __future__ import annotations

import asyncpg
import numpy as np
from pgvector.asyncpg import register_vector

from processors.pipeline.embedding import content_hash
from processors.postgres import coverage, stored_vectors
from processors.postgres.embedding_models import register_model
from processors.postgres.migrations import migrate

MODEL = "hash-8"


async def test_slices_count_the_same_rows_as_one_statement(endpoints) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn)
        await register_vector(conn)
        await register_model(conn, MODEL, 8, "hash")
        texts = {f"t{i:02d}": f"task number {i}" for i in range(11)}
        await conn.executemany(
            """INSERT INTO tasks (task_id, description, occurred_at, content_hash, created_event_id)
               VALUES ($1, $2, now(), $3, $1)""",
            [(t, d, content_hash(d)) for t, d in texts.items()],
        )
        # Vectors for seven tasks, one of them for text that has changed since: six current.
        current = list(texts)[:7]
        rows = [(t, content_hash(texts[t]), np.ones(8, dtype=np.float32)) for t in current]
        rows[0] = (rows[0][0], content_hash("older text"), rows[0][2])
        await stored_vectors.store_vectors(conn, "task", MODEL, rows)
        whole = await coverage.coverage(conn, "tasks", MODEL)
        sliced = [await coverage.coverage(conn, "tasks", MODEL, slice_rows=n) for n in (1, 2, 5, 11, 100)]
    finally:
        await conn.close()
    assert (whole.total, whole.embedded) == (11, 6)
    assert all(s == whole for s in sliced)
