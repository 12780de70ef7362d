"""learned_layers, learned_models, learned_features (sql/0014): the learned layer's state per
embedding model, and the layer's inputs stored with each schedule."""

from __future__ import annotations

from collections.abc import Sequence

from processors.postgres.pool import Conn
from processors.scheduling.learned import StoredRows

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

FeatureRow = tuple[str, str, str, Sequence[float]]  # schedule_id, agent, model, features


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


async def features_of(conn: Conn, keys: Sequence[tuple[int, str, str, str]]) -> dict[int, tuple[float, ...]]:
    """For each (position, schedule_id, agent, model): the features that schedule stored for that
    arm, by position (positions without any are missing). A primary-key lookup per key: the
    caller found the schedules already (accuracy.latest_predictions)."""
    if not keys:
        return {}
    rows = await conn.fetch(
        """SELECT r.i, f.features
           FROM unnest($1::int[], $2::text[], $3::text[], $4::text[]) AS r(i, schedule_id, agent, model)
           JOIN learned_features f USING (schedule_id, agent, model)""",
        [k[0] for k in keys],
        [k[1] for k in keys],
        [k[2] for k in keys],
        [k[3] for k in keys],
    )
    return {int(r["i"]): tuple(float(v) for v in r["features"]) for r in rows}
