"""Changing the embedding model: list models, switch reads in one transaction, drop vectors.

A model change never loses search: the new model is registered and backfilled next to the
active one (each model has its own partial HNSW indexes, so same-dimension models never share
one), `switch` flips the `active` flag in one transaction once the new model covers every row,
and `drop` then removes the old vectors and indexes. The registry row stays (rows still
reference it, and a worker not yet restarted may still write the old model).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from processors.errors import TasksageError
from processors.postgres.coverage import Coverage, coverage
from processors.postgres.embedding_models import VECTOR_TABLES, model_literal
from processors.postgres.pool import Conn, rows_affected
from processors.search.types import SEARCH_KINDS

_PREDICATE_MODELS = re.compile(r"model = '((?:[^']|'')*)'::text")
_DELETE_CHUNK = 10_000


class ModelChangeRefused(TasksageError):
    """The switch or drop would break search or writes; the message says why and what to do."""


@dataclass(frozen=True, slots=True)
class VectorIndex:
    name: str
    table: str
    definition: str
    models: tuple[str, ...]  # models its predicate names (exactly one for a tasksage index)
    size_bytes: int


@dataclass(frozen=True, slots=True)
class ModelInfo:
    name: str
    dimension: int
    provider: str
    active: bool
    coverage: tuple[Coverage, ...]
    indexes: tuple[VectorIndex, ...]
    vectors: int


async def vector_indexes(conn: Conn) -> list[VectorIndex]:
    """Every HNSW index on the vector tables, with the models its predicate names."""
    rows = await conn.fetch(
        """SELECT i.indexname, i.tablename, i.indexdef, pg_relation_size(to_regclass(i.indexname)) AS size
           FROM pg_indexes i WHERE i.schemaname = current_schema() AND i.tablename = ANY($1::text[])
             AND i.indexdef ILIKE '%USING hnsw%' ORDER BY i.indexname""",
        list(VECTOR_TABLES),
    )
    return [
        VectorIndex(
            r["indexname"],
            r["tablename"],
            r["indexdef"],
            tuple(m.replace("''", "'") for m in _PREDICATE_MODELS.findall(r["indexdef"])),
            int(r["size"]),
        )
        for r in rows
    ]


async def list_models(conn: Conn) -> list[ModelInfo]:
    indexes = await vector_indexes(conn)
    out = []
    for r in await conn.fetch("SELECT name, dimension, provider, active FROM embedding_models ORDER BY name"):
        name = r["name"]
        cov = tuple([await coverage(conn, kind, name) for kind in SEARCH_KINDS])
        vectors = 0
        for table in VECTOR_TABLES:
            vectors += int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE model = $1", name))
        out.append(
            ModelInfo(
                name,
                int(r["dimension"]),
                r["provider"],
                bool(r["active"]),
                cov,
                tuple(i for i in indexes if name in i.models),
                vectors,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class SwitchOutcome:
    previous: str | None
    active: str
    coverage: tuple[Coverage, ...]
    forced: bool


async def switch_active(conn: Conn, name: str, *, force: bool = False) -> SwitchOutcome:
    """Make `name` the model reads use, in one transaction. Refused while it does not cover
    every row (search would miss them) or has no index (search would scan), unless forced."""
    async with conn.transaction():
        rows = {
            r["name"]: bool(r["active"])
            for r in await conn.fetch("SELECT name, active FROM embedding_models ORDER BY name FOR UPDATE")
        }
        if name not in rows:
            known = ", ".join(rows) or "none"
            raise ModelChangeRefused(
                f"embedding model {name!r} is not registered (registered: {known})",
                hint="run `tasksage backfill` with the new model configured first; it registers the model",
            )
        previous = next((n for n, active in rows.items() if active), None)
        cov = tuple([await coverage(conn, kind, name) for kind in SEARCH_KINDS])
        if previous == name:
            return SwitchOutcome(previous, name, cov, False)
        problems = [
            f"{c.table}: {c.missing} of {c.total} rows have no current vector" for c in cov if c.missing
        ]
        indexed = {i.table for i in await vector_indexes(conn) if i.models == (name,)}
        problems += [f"{t}: no HNSW index for the model" for t in VECTOR_TABLES if t not in indexed]
        if problems and not force:
            raise ModelChangeRefused(
                f"not switching reads to {name}: " + "; ".join(problems),
                hint=f"run `tasksage backfill` with TASKSAGE_EMBEDDING_MODEL={name} until it reports 0 missing "
                "(or keep `tasksage backfill --follow` running), then switch again; --force switches anyway",
            )
        await conn.execute("UPDATE embedding_models SET active = false WHERE active")
        await conn.execute("UPDATE embedding_models SET active = true WHERE name = $1", name)
        return SwitchOutcome(previous, name, cov, bool(problems))


@dataclass(frozen=True, slots=True)
class DropOutcome:
    model: str
    vectors_deleted: int
    profiles_deleted: int
    indexes_dropped: tuple[str, ...]


async def drop_model_vectors(
    conn: Conn, name: str, *, force: bool = False, recent_write_s: float = 300.0
) -> DropOutcome:
    """Delete a model's vectors, adapted profiles and indexes. Refused for the active model, and
    (unless forced) while something still wrote its vectors in the last `recent_write_s`: a
    worker still configured with it would keep writing vectors nobody reads."""
    row = await conn.fetchrow("SELECT active FROM embedding_models WHERE name = $1", name)
    if row is None:
        raise ModelChangeRefused(f"embedding model {name!r} is not registered")
    if row["active"]:
        raise ModelChangeRefused(
            f"{name} is the active model: search and scheduling read it",
            hint="switch to another model first (`tasksage embeddings switch MODEL`)",
        )
    if not force:
        for table in VECTOR_TABLES:
            recent = await conn.fetchval(
                f"SELECT max(embedded_at) > now() - make_interval(secs => $2) FROM {table} WHERE model = $1",
                name,
                recent_write_s,
            )
            if recent:
                raise ModelChangeRefused(
                    f"{table} received vectors of {name} in the last {recent_write_s:.0f}s: "
                    "a worker still embeds with it",
                    hint="restart workers with the new model configured, then drop; --force drops anyway",
                )
    literal = model_literal(name)
    dropped = []
    for index in await vector_indexes(conn):
        if index.models == (name,):
            await conn.execute(f'DROP INDEX IF EXISTS "{index.name}"')
            dropped.append(index.name)
    deleted = 0
    for table, key in (("message_embeddings", "message_id"), ("task_embeddings", "task_id")):
        # Chunks keep each transaction (and the row locks the worker could wait on) short.
        while True:
            status = await conn.execute(
                f"""DELETE FROM {table} WHERE model = {literal} AND {key} IN (
                        SELECT {key} FROM {table} WHERE model = {literal} LIMIT {_DELETE_CHUNK})"""
            )
            count = rows_affected(status)
            deleted += count
            if count < _DELETE_CHUNK:
                break
    profiles = await conn.execute("DELETE FROM arm_profiles WHERE embedding_model = $1", name)
    # The model's learned layer lives in its vector space: its models (by cascade) and the
    # outcomes still queued for it go with the vectors.
    await conn.execute("DELETE FROM learned_queue WHERE embedding_model = $1", name)
    await conn.execute("DELETE FROM learned_layers WHERE embedding_model = $1", name)
    return DropOutcome(name, deleted, rows_affected(profiles), tuple(dropped))
