"""learned_layers, learned_models (sql/0014; components text_length sql/0016, length_arm sql/0017), learned_features
(sql/0014) and learned_queue (sql/0015): the learned layer's state per embedding model, the layer's
inputs stored with each schedule, and the outcomes waiting to teach it."""

from __future__ import annotations

from collections.abc import Sequence

from processors.embedders.base import Vector
from processors.postgres.pool import Conn, rows_affected
from processors.postgres.stored_vectors import as_array
from processors.scheduling.learned import Lesson
from processors.scheduling.learned_rows import StoredRows
from processors.scheduling.types import Arm

# The layer's models and its version, read in one statement (one snapshot): a worker never sees
# the models of one write with the version of another.
_LOAD = """
    SELECT l.version, m.component, m.agent, m.model, m.dimension, m.outcomes, m.state
    FROM learned_layers l LEFT JOIN learned_models m USING (embedding_model)
    WHERE l.embedding_model = $1"""

# Creates the head row when missing and locks it either way (a no-op update takes the row lock):
# the transaction that applies outcomes holds it until commit, so workers serialise their
# updates of the layer.
_LOCK = """
    INSERT INTO learned_layers (embedding_model, version) VALUES ($1, 0)
    ON CONFLICT (embedding_model) DO UPDATE SET version = learned_layers.version
    RETURNING version"""

_SAVE_MODELS = """
    INSERT INTO learned_models (embedding_model, component, agent, model, dimension, outcomes, state)
    VALUES ($1, $2, $3, $4, $5, $6, $7)
    ON CONFLICT (embedding_model, component, agent, model) DO UPDATE SET
        dimension = EXCLUDED.dimension, outcomes = EXCLUDED.outcomes, state = EXCLUDED.state"""

_BUMP = """
    UPDATE learned_layers SET version = nextval('learned_layer_versions'), updated_at = now()
    WHERE embedding_model = $1 RETURNING version"""

# An outcome's features are those its task's latest schedule stored for the arm that ran; one of
# another width (a release with other features wrote it) teaches nothing and is not queued.
_ENQUEUE = """
    INSERT INTO learned_queue (embedding_model, task_id, agent, model, success, features)
    SELECT $1, r.task_id, r.agent, r.model, r.success, f.features
    FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bool[]) WITH ORDINALITY
         AS r(schedule_id, task_id, agent, model, success, i)
    JOIN learned_features f USING (schedule_id, agent, model)
    WHERE cardinality(f.features) = $7
    ORDER BY r.i"""

# Oldest first, up to a position; the caller holds the layer's lock, so no other learner takes
# the same rows.
_TAKE = """
    DELETE FROM learned_queue WHERE position IN (
        SELECT position FROM learned_queue WHERE embedding_model = $1 AND position <= $3
        ORDER BY position LIMIT $2)
    RETURNING position, task_id, agent, model, success, features"""

# The head row locked if no other transaction holds it; whether it exists either way.
_TRY_LOCK = """
    WITH locked AS (
        SELECT version FROM learned_layers WHERE embedding_model = $1 FOR UPDATE SKIP LOCKED)
    SELECT (SELECT version FROM locked) AS version,
           EXISTS (SELECT 1 FROM learned_layers WHERE embedding_model = $1) AS present"""

FeatureRow = tuple[str, str, str, Sequence[float]]  # schedule_id, agent, model, features
# An outcome to queue: schedule_id (its task's latest schedule), task_id, agent, model, success.
OutcomeRow = tuple[str, str, str, str, bool]


async def version(conn: Conn, embedding_model: str) -> int:
    """The layer's version; 0 when nothing was learned yet."""
    value = await conn.fetchval(
        "SELECT version FROM learned_layers WHERE embedding_model = $1", embedding_model
    )
    return int(value or 0)


async def load(conn: Conn, embedding_model: str) -> tuple[int, StoredRows]:
    """The layer's version and its models (version 0 and no rows when nothing was learned yet)."""
    rows = await conn.fetch(_LOAD, embedding_model)
    if not rows:
        return 0, {}
    stored: StoredRows = {
        (r["component"], r["agent"], r["model"]): (r["dimension"], r["outcomes"], bytes(r["state"]))
        for r in rows
        if r["component"] is not None
    }
    return int(rows[0]["version"]), stored


async def lock(conn: Conn, embedding_model: str) -> int:
    """Lock the layer's head row for the rest of the transaction; returns its version."""
    return int(await conn.fetchval(_LOCK, embedding_model))


async def try_lock(conn: Conn, embedding_model: str) -> int | None:
    """`lock`, unless another transaction holds the head row: then None at once, without waiting.
    A head row not there yet is created by `lock` (which waits for a learner creating it at the
    same moment: once per embedding model)."""
    row = await conn.fetchrow(_TRY_LOCK, embedding_model)
    assert row is not None  # scalar subqueries: always one row
    if row["version"] is not None:
        return int(row["version"])
    return None if row["present"] else await lock(conn, embedding_model)


async def save(conn: Conn, embedding_model: str, rows: StoredRows) -> int:
    """Write these models (the caller holds the lock) and give the layer a new version."""
    await conn.executemany(
        _SAVE_MODELS,
        [
            (embedding_model, component, agent, model, dimension, outcomes, state)
            for (component, agent, model), (dimension, outcomes, state) in sorted(rows.items())
        ],
    )
    return int(await conn.fetchval(_BUMP, embedding_model))


async def store_features(conn: Conn, rows: Sequence[FeatureRow]) -> None:
    """The layer's inputs per (schedule, arm), in the transaction that stores the predictions:
    one set-based statement for the whole batch (a batch of 500 tasks has thousands of rows)."""
    if not rows:
        return
    width = len(rows[0][3])
    if any(len(f) != width for *_, f in rows):
        raise ValueError("every feature row must have the same number of features")
    await conn.execute(
        """INSERT INTO learned_features (schedule_id, agent, model, features)
           SELECT r.s, r.a, r.m, ($4::float8[])[(r.i - 1) * $5 + 1 : r.i * $5]
           FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS r(s, a, m, i)
           ON CONFLICT (schedule_id, agent, model) DO NOTHING""",
        [r[0] for r in rows],
        [r[1] for r in rows],
        [r[2] for r in rows],
        [v for r in rows for v in r[3]],
        width,
    )


async def enqueue(conn: Conn, embedding_model: str, outcomes: Sequence[OutcomeRow], width: int) -> int:
    """Queue, in this order, the outcomes whose schedule stored `width` features for the arm that
    ran (in the transaction that claims them); returns how many were queued."""
    if not outcomes:
        return 0
    status = await conn.execute(
        _ENQUEUE,
        embedding_model,
        *([o[k] for o in outcomes] for k in range(5)),
        width,
    )
    return rows_affected(status)


async def last_queued(conn: Conn, embedding_model: str) -> int | None:
    """The position of the newest queued outcome of this model (None: the queue is empty)."""
    value = await conn.fetchval(
        "SELECT max(position) FROM learned_queue WHERE embedding_model = $1", embedding_model
    )
    return None if value is None else int(value)


async def take_queued(conn: Conn, embedding_model: str, limit: int, up_to: int) -> list[Lesson]:
    """Remove up to `limit` queued outcomes at or before position `up_to`, oldest first, and
    return them in queue order (call under the lock, in the transaction that saves what they
    taught)."""
    rows = sorted(await conn.fetch(_TAKE, embedding_model, limit, up_to), key=lambda r: r["position"])
    return [(r["task_id"], Arm(r["agent"], r["model"]), tuple(r["features"]), r["success"]) for r in rows]


async def task_inputs(
    conn: Conn, embedding_model: str, task_ids: Sequence[str]
) -> tuple[dict[str, Vector], dict[str, int]]:
    """What the text models read of these tasks, in one statement: each stored vector of this
    model, and its task's description length in characters (Python's len() of the same text at
    decision time). A task without a vector of this model is in neither."""
    rows = await conn.fetch(
        """SELECT e.task_id, e.embedding, char_length(t.description) AS chars
           FROM task_embeddings e JOIN tasks t USING (task_id)
           WHERE e.model = $1 AND e.task_id = ANY($2::text[])""",
        embedding_model,
        list(task_ids),
    )
    return {r["task_id"]: as_array(r["embedding"]) for r in rows}, {
        r["task_id"]: int(r["chars"]) for r in rows
    }


async def queue_length(conn: Conn, embedding_model: str) -> int:
    """Outcomes of this model waiting for its layer."""
    return int(
        await conn.fetchval("SELECT count(*) FROM learned_queue WHERE embedding_model = $1", embedding_model)
    )
