"""SQL for searches, built as text plus arguments (pure: no I/O).

Every vector query orders by `embedding::vector(D) <=> $1::vector(D)` under `model = '<name>'`
written as a literal, exactly the expression and predicate of the model's partial HNSW index
(processors/postgres/embedding_models.py); any other spelling and PostgreSQL cannot use the index. LIMITs
are literals too: a prepared statement with a parameter LIMIT may switch to a generic plan that
gives the index up.

Filtered searches. An HNSW scan yields at most `hnsw.ef_search` rows on pgvector < 0.8, and a
filter applied after the scan can leave fewer than asked. Three strategies:
- "iterative" (pgvector >= 0.8): filter and LIMIT in one query with `hnsw.iterative_scan`, the
  scan resumes until LIMIT rows pass the filter;
- "index": take `candidates` rows from the index, filter them outside; the caller raises
  `candidates` (and ef_search with it) until enough rows pass (oversampling);
- "exact": filter first, then rank every remaining row; for filters too selective for
  oversampling to pay off. A MATERIALIZED CTE keeps the planner from using the index here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from processors.search.types import Filters, SearchKind

Strategy = Literal["index", "iterative", "exact"]


@dataclass(frozen=True, slots=True)
class KindSpec:
    kind: SearchKind
    source: str  # table of rows
    vectors: str  # table of their embeddings
    key: str
    text: str
    details: tuple[str, ...]
    filters: dict[str, str]  # Filters field -> column of `source`


KINDS: dict[SearchKind, KindSpec] = {
    "messages": KindSpec(
        "messages",
        "messages",
        "message_embeddings",
        "message_id",
        "content",
        ("source", "author", "thread_id", "task_id", "occurred_at"),
        {
            "source": "source",
            "author": "author",
            "thread_id": "thread_id",
            "task_id": "task_id",
            "since": "occurred_at",
        },
    ),
    "tasks": KindSpec(
        "tasks",
        "tasks",
        "task_embeddings",
        "task_id",
        "description",
        ("kind", "status", "priority", "occurred_at"),
        {"kind": "kind", "status": "status", "since": "occurred_at"},
    ),
}


@dataclass(frozen=True, slots=True)
class Query:
    sql: str
    args: tuple[Any, ...]


def distance(dimension: int, alias: str = "e") -> str:
    dim = int(dimension)
    return f"{alias}.embedding::vector({dim}) <=> $1::vector({dim})"


def filter_clauses(spec: KindSpec, filters: Filters, first_param: int, alias: str = "s") -> Query:
    """`AND col = $n ...` for the filters set, numbered from `first_param`."""
    parts: list[str] = []
    args: list[Any] = []
    for name in Filters.__slots__:
        value = getattr(filters, name)
        if value is None:
            continue
        column = spec.filters.get(name)
        if column is None:
            raise ValueError(f"filter {name!r} does not apply to {spec.kind}")
        op = ">=" if name == "since" else "="
        args.append(value)
        parts.append(f" AND {alias}.{column} {op} ${first_param + len(args) - 1}")
    return Query("".join(parts), tuple(args))


def vector_query(
    spec: KindSpec,
    model_literal: str,
    dimension: int,
    vector: Any,
    filters: Filters,
    rows: int,
    strategy: Strategy,
    index_predicate: str = "",
) -> Query:
    """(id, distance) rows, nearest first. `rows` is the candidate count ("index") or the
    number wanted ("iterative", "exact"). `index_predicate` is the extra part of the index's
    WHERE clause (e.g. " AND has_outcome"); only rows it covers are searched with the index."""
    rows = int(rows)
    if rows < 1:
        raise ValueError("rows must be at least 1")
    dist = distance(dimension)
    scope = f"e.model = {model_literal}{index_predicate}"
    if strategy == "index":
        inner = f"""SELECT e.{spec.key} AS id, {dist} AS distance FROM {spec.vectors} e
            WHERE {scope} ORDER BY {dist} LIMIT {rows}"""
        if filters.empty:
            return Query(inner, (vector,))
        where = filter_clauses(spec, filters, 2)
        # `scanned`: how many candidates the index gave, so the caller knows whether growing
        # the candidate pool can find more (the CTE is read twice, hence scanned once).
        return Query(
            f"""WITH nn AS ({inner})
                SELECT nn.id, nn.distance, (SELECT count(*) FROM nn) AS scanned FROM nn
                JOIN {spec.source} s ON s.{spec.key} = nn.id
                WHERE true{where.sql} ORDER BY nn.distance, nn.id""",
            (vector, *where.args),
        )
    where = filter_clauses(spec, filters, 2)
    join = f"JOIN {spec.source} s ON s.{spec.key} = e.{spec.key}"
    if strategy == "iterative":
        return Query(
            f"""SELECT e.{spec.key} AS id, {dist} AS distance FROM {spec.vectors} e {join}
                WHERE {scope}{where.sql} ORDER BY {dist} LIMIT {rows}""",
            (vector, *where.args),
        )
    return Query(
        f"""WITH scored AS MATERIALIZED (
                SELECT e.{spec.key} AS id, {dist} AS distance FROM {spec.vectors} e {join}
                WHERE {scope}{where.sql})
            SELECT id, distance FROM scored ORDER BY distance, id LIMIT {rows}""",
        (vector, *where.args),
    )


def unindexed_rest_query(
    spec: KindSpec,
    model_literal: str,
    dimension: int,
    vector: Any,
    filters: Filters,
    rows: int,
    index_predicate: str,
) -> Query:
    """Exact ranking of the model's rows the partial index leaves out (tasks without outcomes:
    the pending work, small by nature), so a search still covers every row."""
    dist = distance(dimension)
    where = filter_clauses(spec, filters, 2)
    return Query(
        f"""SELECT e.{spec.key} AS id, {dist} AS distance FROM {spec.vectors} e
            JOIN {spec.source} s ON s.{spec.key} = e.{spec.key}
            WHERE e.model = {model_literal} AND NOT (true{index_predicate}){where.sql}
            ORDER BY distance, id LIMIT {int(rows)}""",
        (vector, *where.args),
    )


def text_query(spec: KindSpec, text: str, filters: Filters, rows: int) -> Query:
    """(id, rank) by PostgreSQL full-text search over the generated `search_text` column (GIN).
    websearch_to_tsquery accepts what people type: quotes, OR, -exclusions, never a syntax error."""
    where = filter_clauses(spec, filters, 2)
    return Query(
        f"""SELECT s.{spec.key} AS id, ts_rank_cd(s.search_text, q) AS rank
            FROM {spec.source} s, websearch_to_tsquery('english', $1) q
            WHERE s.search_text @@ q{where.sql}
            ORDER BY rank DESC, s.{spec.key} LIMIT {int(rows)}""",
        (text, *where.args),
    )


def similarity_query(
    spec: KindSpec, model_literal: str, dimension: int, vector: Any, ids: Sequence[str]
) -> Query:
    """Cosine similarity of given rows to the query vector (hybrid hits found by keywords only)."""
    return Query(
        f"""SELECT e.{spec.key} AS id, {distance(dimension)} AS distance FROM {spec.vectors} e
            WHERE e.model = {model_literal} AND e.{spec.key} = ANY($2::text[])""",
        (vector, list(ids)),
    )


def details_query(spec: KindSpec, ids: Sequence[str]) -> Query:
    columns = ", ".join(f"s.{c}" for c in spec.details)
    return Query(
        f"""SELECT s.{spec.key} AS id, s.{spec.text} AS text, {columns} FROM {spec.source} s
            WHERE s.{spec.key} = ANY($1::text[])""",
        (list(ids),),
    )


def stored_vector_query(spec: KindSpec, model_literal: str) -> str:
    return f"SELECT embedding FROM {spec.vectors} WHERE {spec.key} = $1 AND model = {model_literal}"
