"""Embedding models and their per-model HNSW indexes (idempotent, run at start-up)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from processors.errors import ConfigurationError
from processors.postgres.pool import Conn
from processors.search.tuning import build_params

_SAFE_MODEL = re.compile(r"^[A-Za-z0-9._:/@+-]{1,200}$")
VECTOR_TABLES = ("task_embeddings", "message_embeddings")
# The table whose rows each vector table embeds: its size picks the HNSW build parameters.
_ROWS_OF = {"task_embeddings": "tasks", "message_embeddings": "messages"}
# Extra index predicate per table. Only tasks with outcomes can be neighbours, so only they
# enter the task index (sql/0005): a new task costs no HNSW insert on its way to a schedule.
# A new message's vector waits for the index merger (sql/0008), off the batch's transaction.
INDEX_PREDICATES = {"task_embeddings": " AND has_outcome", "message_embeddings": " AND indexed"}


@dataclass(frozen=True, slots=True)
class EmbeddingModel:
    name: str
    dimension: int
    provider: str
    active: bool


def model_literal(name: str) -> str:
    """The model name as an SQL literal. Partial-index predicates must be literals, not
    parameters, or the planner cannot match the index; names are checked first."""
    if not _SAFE_MODEL.match(name):
        raise ConfigurationError(f"embedding model name {name!r} has characters tasksage does not allow")
    return "'" + name.replace("'", "''") + "'"


def index_name(table: str, model: str, dimension: int) -> str:
    """Unique per model: the slug alone maps "a.b" and "a-b" (or names equal in their first 24
    characters) to one name, and the second model would silently get no index of its own."""
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:24]
    digest = hashlib.sha256(model.encode()).hexdigest()[:8]
    return f"{table}_hnsw_{slug}_{dimension}_{digest}"


def _legacy_index_name(table: str, model: str, dimension: int) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:30]
    return f"{table}_hnsw_{slug}_{dimension}"


async def pgvector_version(conn: Conn) -> tuple[int, ...]:
    text = await conn.fetchval("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    if text is None:
        raise ConfigurationError("the pgvector extension is not installed", hint="run `tasksage migrate`")
    return tuple(int(part) for part in str(text).split("."))


async def register_model(conn: Conn, name: str, dimension: int, provider: str) -> EmbeddingModel:
    """Record the model; the first model registered becomes the active one for reads."""
    model_literal(name)
    row = await conn.fetchrow("SELECT dimension, active FROM embedding_models WHERE name = $1", name)
    if row is not None:
        if row["dimension"] != dimension:
            raise ConfigurationError(
                f"embedding model {name!r} is registered with dimension {row['dimension']}, "
                f"but the embedder produces {dimension}",
                hint="use a different model name for a different dimension",
            )
        return EmbeddingModel(name, dimension, provider, bool(row["active"]))
    has_active = await conn.fetchval("SELECT EXISTS (SELECT 1 FROM embedding_models WHERE active)")
    await conn.execute(
        """INSERT INTO embedding_models (name, dimension, provider, active) VALUES ($1, $2, $3, $4)
           ON CONFLICT (name) DO NOTHING""",
        name,
        dimension,
        provider,
        not has_active,
    )
    return EmbeddingModel(name, dimension, provider, not has_active)


async def active_model(conn: Conn) -> EmbeddingModel | None:
    row = await conn.fetchrow("SELECT name, dimension, provider FROM embedding_models WHERE active")
    return None if row is None else EmbeddingModel(row["name"], row["dimension"], row["provider"], True)


async def all_models(conn: Conn) -> list[tuple[str, bool]]:
    """(name, active) of every registered model."""
    return [(r["name"], r["active"]) for r in await conn.fetch("SELECT name, active FROM embedding_models")]


async def ensure_indexes(
    conn: Conn, model: str, dimension: int, *, m: int | None = None, ef_construction: int | None = None
) -> list[str]:
    """Create the model's HNSW (cosine) index on every vector table if missing. m and
    ef_construction grow with the size of the table the vectors belong to; given values are floors."""
    created = []
    literal = model_literal(model)
    for table in VECTOR_TABLES:
        name = index_name(table, model, dimension)
        if await _has_index(conn, table, model, dimension):
            continue
        params = build_params(await _row_count(conn, _ROWS_OF[table]), m, ef_construction)
        await conn.execute(
            f"CREATE INDEX IF NOT EXISTS {name} ON {table} USING hnsw "
            f"((embedding::vector({int(dimension)})) vector_cosine_ops) "
            f"WITH (m = {int(params.m)}, ef_construction = {int(params.ef_construction)}) "
            f"WHERE model = {literal}{INDEX_PREDICATES[table]}"
        )
        created.append(name)
    return created


async def _row_count(conn: Conn, table: str) -> int:
    """The planner's estimate; counted when the table was never analyzed (reltuples -1)."""
    estimate = await conn.fetchval(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)", table
    )
    if estimate is not None and estimate >= 0:
        return int(estimate)
    return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))


async def _has_index(conn: Conn, table: str, model: str, dimension: int) -> bool:
    if await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", index_name(table, model, dimension)):
        return True
    # Named before names carried a digest: it counts if its predicate names this very model.
    definition = await conn.fetchval(
        "SELECT pg_get_indexdef(to_regclass($1))", _legacy_index_name(table, model, dimension)
    )
    return definition is not None and f"model = {model_literal(model)}::text" in definition
