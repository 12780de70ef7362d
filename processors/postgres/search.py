"""Semantic, hybrid and similar-row search over one embedding model's vectors.

Reads go to the model given (the active one, see `embedding_models.active_model`), through its partial
HNSW index. Each search runs in a short transaction so `SET LOCAL` tunes only that search:
ef_search by table size (processors/search/tuning.py), and on pgvector >= 0.8 iterative scans
for filtered searches; older versions oversample instead (processors/postgres/search_queries.py).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

import orjson

from processors.embedders.base import Vector
from processors.errors import TasksageError
from processors.postgres.embedding_models import INDEX_PREDICATES, EmbeddingModel, model_literal
from processors.postgres.pool import Conn, Pool, tuned_transaction
from processors.postgres.search_queries import (
    KINDS,
    KindSpec,
    Query,
    Strategy,
    details_query,
    filter_clauses,
    similarity_query,
    stored_vector_query,
    text_query,
    unindexed_rest_query,
    vector_query,
)
from processors.postgres.stored_vectors import as_array
from processors.search.fusion import DEFAULT_K, reciprocal_rank_fusion
from processors.search.tuning import (
    candidate_plan,
    ef_search_for,
    oversampled_ef_search,
    prefer_exact,
)
from processors.search.types import Filters, SearchHit, SearchKind, SearchResult, VectorCapabilities

_ROW_ESTIMATE_TTL_S = 30.0


class NotEmbedded(TasksageError):
    """The row asked for has no vector in the active model (yet): nothing to compare with."""


class RowNotFound(NotEmbedded):
    """No row has that id."""


@dataclass(frozen=True, slots=True)
class SearchTuning:
    ef_search: int | None = None  # None: by table size
    oversample: int = 4  # filtered searches on pgvector < 0.8: first try limit x this candidates
    rrf_k: int = DEFAULT_K
    vector_weight: float = 1.0
    text_weight: float = 1.0
    hybrid_candidates: int = 4  # each ranking contributes limit x this candidates to the fusion
    exact_max_rows: int = 10_000  # filtered searches keeping at most this many rows are exact


@dataclass(frozen=True, slots=True)
class _Ranked:
    ids: list[tuple[str, float]]  # (id, distance), nearest first
    scanned: int
    exact: bool


class SearchRepository:
    def __init__(
        self,
        pool: Pool,
        model: EmbeddingModel,
        capabilities: VectorCapabilities,
        tuning: SearchTuning | None = None,
    ) -> None:
        self.pool = pool
        self.model = model
        self.capabilities = capabilities
        self.tuning = tuning or SearchTuning()
        self._literal = model_literal(model.name)
        self._row_estimates: dict[str, tuple[float, int]] = {}

    # -- public ---------------------------------------------------------------------------

    async def search(
        self,
        kind: SearchKind,
        vector: Vector,
        *,
        limit: int = 10,
        threshold: float | None = None,
        filters: Filters | None = None,
        exclude_id: str | None = None,
    ) -> SearchResult:
        spec = KINDS[kind]
        filters = filters or Filters()
        async with self.pool.acquire() as conn:
            ranked = await self._nearest(conn, spec, vector, limit + (exclude_id is not None), filters)
            pairs = [(i, 1.0 - d) for i, d in ranked.ids if i != exclude_id]
            if threshold is not None:
                pairs = [(i, s) for i, s in pairs if s >= threshold]
            pairs = pairs[:limit]
            details = await _details(conn, spec, [i for i, _ in pairs])
        hits = tuple(
            replace(details[i], score=s, similarity=s, vector_rank=rank)
            for rank, (i, s) in enumerate(pairs, start=1)
            if i in details
        )
        mode: Literal["vector", "similar"] = "vector" if exclude_id is None else "similar"
        return SearchResult(kind, self.model.name, mode, hits, ranked.scanned, ranked.exact)

    async def hybrid(
        self,
        kind: SearchKind,
        text: str,
        vector: Vector,
        *,
        limit: int = 10,
        threshold: float | None = None,
        filters: Filters | None = None,
    ) -> SearchResult:
        """Vector and full-text rankings fused by reciprocal rank fusion. A hit qualifies when
        it matched the keywords or its similarity reaches `threshold`: an exact keyword (an
        error code, a ticket id) must not be thrown away for scoring low semantically."""
        spec = KINDS[kind]
        filters = filters or Filters()
        pool_size = max(limit * self.tuning.hybrid_candidates, limit)
        async with self.pool.acquire() as conn:
            ranked = await self._nearest(conn, spec, vector, pool_size, filters)
            query = text_query(spec, text, filters, pool_size)
            keyword_ids = [r["id"] for r in await conn.fetch(query.sql, *query.args)]
            similarity = {i: 1.0 - d for i, d in ranked.ids}
            missing = [i for i in keyword_ids if i not in similarity]
            if missing:
                query = similarity_query(spec, self._literal, self.model.dimension, vector, missing)
                similarity.update(
                    {r["id"]: 1.0 - float(r["distance"]) for r in await conn.fetch(query.sql, *query.args)}
                )
            fused = reciprocal_rank_fusion(
                [[i for i, _ in ranked.ids], keyword_ids],
                [self.tuning.vector_weight, self.tuning.text_weight],
                self.tuning.rrf_k,
            )
            keyword_set = set(keyword_ids)
            chosen = [
                f
                for f in fused
                if threshold is None or f.id in keyword_set or similarity.get(f.id, -1.0) >= threshold
            ][:limit]
            details = await _details(conn, spec, [f.id for f in chosen])
        hits = tuple(
            replace(
                details[f.id],
                score=f.score,
                similarity=similarity.get(f.id),
                vector_rank=f.ranks[0],
                text_rank=f.ranks[1],
            )
            for f in chosen
            if f.id in details
        )
        return SearchResult(kind, self.model.name, "hybrid", hits, ranked.scanned, ranked.exact)

    async def stored_vector(self, kind: SearchKind, row_id: str) -> Vector:
        spec = KINDS[kind]
        async with self.pool.acquire() as conn:
            value = await conn.fetchval(stored_vector_query(spec, self._literal), row_id)
            if value is not None:
                return as_array(value)
            exists = await conn.fetchval(f"SELECT true FROM {spec.source} WHERE {spec.key} = $1", row_id)
        what = f"{spec.kind[:-1]} {row_id!r}"
        if not exists:
            raise RowNotFound(f"no {what}")
        raise NotEmbedded(
            f"{what} has no vector in the active model {self.model.name} yet",
            hint="run `tasksage backfill` to embed it",
        )

    async def explain(
        self, kind: SearchKind, vector: Vector, *, limit: int = 10, filters: Filters | None = None
    ) -> list[str]:
        """The plan of the first query a search would run (for tests and `search --explain`)."""
        spec = KINDS[kind]
        filters = filters or Filters()
        async with self.pool.acquire() as conn:
            strategy, plan = await self._strategy(conn, spec, limit, filters)
            rows = plan[0] if plan else limit
            query = vector_query(
                spec,
                self._literal,
                self.model.dimension,
                vector,
                filters,
                rows,
                strategy,
                self._predicate(spec),
            )
            async with tuned_transaction(conn, await self._tuning(conn, spec, rows, strategy, bool(plan))):
                return [r[0] for r in await conn.fetch("EXPLAIN " + query.sql, *query.args)]

    # -- internals ------------------------------------------------------------------------

    def _predicate(self, spec: KindSpec) -> str:
        return INDEX_PREDICATES.get(spec.vectors, "")

    async def _rows(self, conn: Conn, table: str) -> int:
        """Planner's row estimate of a table; cheap, refreshed every 30 s."""
        now = time.monotonic()
        cached = self._row_estimates.get(table)
        if cached is not None and now - cached[0] < _ROW_ESTIMATE_TTL_S:
            return cached[1]
        value = await conn.fetchval(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass($1)", table
        )
        rows = max(0, int(value or 0))
        self._row_estimates[table] = (now, rows)
        return rows

    async def _tuning(
        self, conn: Conn, spec: KindSpec, wanted: int, strategy: Strategy, oversampled: bool = False
    ) -> str:
        """The SET LOCAL statements of one search's transaction."""
        rows = await self._rows(conn, spec.vectors)
        return _settings(ef_search_for(rows, wanted, self.tuning.ef_search), wanted, strategy, oversampled)

    async def _run(
        self, conn: Conn, spec: KindSpec, queries: Sequence[Query], wanted: int, strategy: Strategy
    ) -> list[list[tuple[str, float]]]:
        """Each query's (id, distance) rows, all in one transaction tuned for the first."""
        tuning = await self._tuning(conn, spec, wanted, strategy)
        return [_pairs(rows) for rows in await _read_together(conn, tuning, queries)]

    async def _nearest(
        self, conn: Conn, spec: KindSpec, vector: Vector, wanted: int, filters: Filters
    ) -> _Ranked:
        """The index's nearest rows, merged with an exact ranking of the rows not indexed yet
        (the queue, sql/0006 and sql/0008). That exact ranking cannot use the partial index. It
        is read in the index read's transaction, on the same snapshot: the merger moving rows
        from the queue to the index between two separate reads would hide them from both."""
        predicate = self._predicate(spec)
        rest_query = (
            unindexed_rest_query(
                spec, self._literal, self.model.dimension, vector, filters, wanted, predicate
            )
            if predicate
            else None
        )
        ranked, rest = await self._nearest_indexed(conn, spec, vector, wanted, filters, rest_query)
        if not rest:
            return ranked
        merged = sorted(ranked.ids + rest, key=lambda pair: (pair[1], pair[0]))[:wanted]
        return _Ranked(merged, ranked.scanned + len(rest), ranked.exact)

    async def _strategy(
        self, conn: Conn, spec: KindSpec, wanted: int, filters: Filters
    ) -> tuple[Strategy, list[int]]:
        """How to find `wanted` rows, and for oversampling the candidate counts to try."""
        if filters.empty:
            return "index", []
        if self.capabilities.iterative_scan:
            return "iterative", []
        # pgvector < 0.8: few matching rows are ranked exactly; otherwise oversample, sized by
        # the planner's estimate of how many rows the filter keeps.
        matching, total = await self._filter_estimate(conn, spec, filters)
        if prefer_exact(matching, self.tuning.exact_max_rows):
            return "exact", []
        plan = candidate_plan(wanted, self.tuning.oversample, selectivity=matching / total if total else None)
        return ("index", plan) if plan else ("exact", [])

    async def _nearest_indexed(
        self,
        conn: Conn,
        spec: KindSpec,
        vector: Vector,
        wanted: int,
        filters: Filters,
        rest_query: Query | None,
    ) -> tuple[_Ranked, list[tuple[str, float]]]:
        """The index's ranking, and `rest_query`'s rows read on the same snapshot."""
        dim = self.model.dimension
        predicate = self._predicate(spec)
        rest = [rest_query] if rest_query else []
        strategy, plan = await self._strategy(conn, spec, wanted, filters)
        if strategy != "index" or not plan:
            query = vector_query(spec, self._literal, dim, vector, filters, wanted, strategy, predicate)
            found, *queued = await self._run(conn, spec, [query, *rest], wanted, strategy)
            return _Ranked(found, len(found), strategy == "exact"), queued[0] if queued else []
        for candidates in plan:  # oversampling: grow the pool while too few rows pass the filter
            query = vector_query(spec, self._literal, dim, vector, filters, candidates, "index", predicate)
            tuning = await self._tuning(conn, spec, candidates, "index", oversampled=True)
            rows, *queued_rows = await _read_together(conn, tuning, [query, *rest])
            found = _pairs(rows)
            if len(found) >= wanted:
                return _Ranked(found[:wanted], candidates, False), _pairs(queued_rows[0] if rest else [])
            if rows and rows[0]["scanned"] < candidates:
                break  # the index has no more rows to offer
        # Still short (the estimate was off): rank the filtered rows exactly.
        query = vector_query(spec, self._literal, dim, vector, filters, wanted, "exact", predicate)
        found, *queued = await self._run(conn, spec, [query, *rest], wanted, "exact")
        return _Ranked(found, len(found), True), queued[0] if queued else []

    async def _filter_estimate(self, conn: Conn, spec: KindSpec, filters: Filters) -> tuple[float, float]:
        """(rows the filter keeps, rows in all) as the planner estimates them: planning only."""
        where = filter_clauses(spec, filters, 1)
        plans = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {spec.source} s WHERE true{where.sql}", *where.args
        )
        matching = float(orjson.loads(plans)[0]["Plan"]["Plan Rows"])
        total = float(await self._rows(conn, spec.source))
        return matching, max(total, matching)


async def _read_together(conn: Conn, tuning: str, queries: Sequence[Query]) -> list[list[Any]]:
    """Each query's rows, all in one read-only transaction on one snapshot, tuned by `tuning`."""
    async with tuned_transaction(conn, tuning, snapshot=True):
        return [await conn.fetch(query.sql, *query.args) for query in queries]


def _pairs(rows: Sequence[Any]) -> list[tuple[str, float]]:
    return [(r["id"], float(r["distance"])) for r in rows]


async def _details(conn: Conn, spec: KindSpec, ids: Sequence[str]) -> dict[str, SearchHit]:
    if not ids:
        return {}
    query = details_query(spec, ids)
    out = {}
    for r in await conn.fetch(query.sql, *query.args):
        details = {c: "" if r[c] is None else str(r[c]) for c in spec.details}
        out[r["id"]] = SearchHit(r["id"], r["text"], 0.0, None, details=details)
    return out


def _settings(ef: int, wanted: int, strategy: Strategy, oversampled: bool) -> str:
    if oversampled:
        ef = oversampled_ef_search(wanted, ef)
    tuning = f"SET LOCAL hnsw.ef_search = {int(ef)}"
    if strategy == "iterative":
        tuning += "; SET LOCAL hnsw.iterative_scan = strict_order"
    return tuning
