"""Pure parts of search: HNSW parameters by size, candidate plans, and the SQL each strategy
runs (the pgvector >= 0.8 path cannot run on the 0.6.2 server the tests use, so its query text
is checked here)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from processors.postgres.search_queries import (
    KINDS,
    filter_clauses,
    text_query,
    unindexed_rest_query,
    vector_query,
)
from processors.search.tuning import (
    MAX_EF_SEARCH,
    build_params,
    candidate_plan,
    ef_search_for,
    oversampled_ef_search,
    prefer_exact,
)
from processors.search.types import Filters, VectorCapabilities

MODEL = "'hash-384'"


def test_build_parameters_grow_with_the_table_and_configured_values_are_floors() -> None:
    small, large, huge = build_params(1_000), build_params(1_000_000), build_params(10_000_000)
    assert (small.m, small.ef_construction) == (16, 64)
    assert small.m < large.m < huge.m
    assert small.ef_construction < large.ef_construction < huge.ef_construction
    assert build_params(1_000, m=32).m == 32
    assert build_params(1_000, m=32).ef_construction >= 64  # at least 2 m
    assert build_params(1_000_000, m=8).m == large.m  # a floor never shrinks the tier
    with pytest.raises(ValueError):
        build_params(10, m=101)


def test_ef_search_follows_size_never_below_the_limit_and_never_above_pgvectors_cap() -> None:
    assert ef_search_for(1_000, 10) <= ef_search_for(1_000_000, 10) <= ef_search_for(50_000_000, 10)
    assert ef_search_for(1_000, 500) == 500
    assert ef_search_for(1_000, 5_000) == MAX_EF_SEARCH
    assert ef_search_for(1_000_000, 10, configured=33) == 33


def test_candidate_plan_grows_until_one_scan_can_yield_no_more() -> None:
    assert candidate_plan(10, 4) == [40, 160, 640, MAX_EF_SEARCH]
    assert candidate_plan(200, 4) == [800, MAX_EF_SEARCH]
    assert candidate_plan(300, 4) == []  # more than one scan can hold: exact instead
    plan = candidate_plan(1, 1)
    assert plan == sorted(plan) and plan[-1] == MAX_EF_SEARCH


def test_candidate_plan_sizes_the_first_scan_by_the_filters_selectivity() -> None:
    # 10 rows through a filter keeping 25%: 160 candidates expect 40 to pass (4x margin).
    assert candidate_plan(10, 4, selectivity=0.25)[0] == 160
    assert candidate_plan(10, 4, selectivity=1.0)[0] == 40
    assert oversampled_ef_search(160, 80) == 320 and oversampled_ef_search(800, 80) == MAX_EF_SEARCH
    # Too selective for one HNSW scan to hold enough candidates: no plan, rank exactly.
    assert candidate_plan(10, 4, selectivity=0.001) == []
    assert candidate_plan(10, 4, selectivity=0.0) == []
    assert prefer_exact(5_000, 10_000) and not prefer_exact(50_000, 10_000)


def test_capabilities_are_read_from_the_version() -> None:
    assert not VectorCapabilities((0, 6, 2)).iterative_scan
    assert not VectorCapabilities((0, 7, 4)).iterative_scan
    assert VectorCapabilities((0, 8, 0)).iterative_scan
    assert VectorCapabilities((0, 8, 0)).label == "0.8.0"


def _normalised(sql: str) -> str:
    return " ".join(sql.split())


def test_unfiltered_query_matches_the_partial_index_expression_and_predicate() -> None:
    query = vector_query(KINDS["messages"], MODEL, 384, "VEC", Filters(), 10, "index")
    sql = _normalised(query.sql)
    # Exactly the index's expression, operator, predicate (ensure_indexes) and a literal LIMIT.
    assert "WHERE e.model = 'hash-384' ORDER BY e.embedding::vector(384) <=> $1::vector(384) LIMIT 10" in sql
    assert query.args == ("VEC",)


def test_oversampled_filtered_query_filters_outside_the_index_scan() -> None:
    filters = Filters(source="pager", author="ana")
    query = vector_query(KINDS["messages"], MODEL, 384, "VEC", filters, 160, "index")
    sql = _normalised(query.sql)
    inner, outer = sql.split(") SELECT nn.id", 1)
    assert "LIMIT 160" in inner and "source" not in inner
    assert "(SELECT count(*) FROM nn) AS scanned" in outer
    assert "s.source = $2" in outer and "s.author = $3" in outer
    assert query.args == ("VEC", "pager", "ana")


def test_iterative_query_keeps_filter_and_limit_with_the_index_order() -> None:
    query = vector_query(KINDS["messages"], MODEL, 384, "VEC", Filters(source="pager"), 10, "iterative")
    sql = _normalised(query.sql)
    assert (
        "e.model = 'hash-384' AND s.source = $2 ORDER BY e.embedding::vector(384) <=> $1::vector(384) LIMIT 10"
        in sql
    )
    assert ") nn" not in sql  # one level: the scan itself must see the filter to keep going


def test_exact_query_is_fenced_from_the_index() -> None:
    query = vector_query(
        KINDS["tasks"], MODEL, 384, "VEC", Filters(kind="code"), 10, "exact", " AND has_outcome"
    )
    sql = _normalised(query.sql)
    assert "AS MATERIALIZED" in sql
    assert "e.model = 'hash-384' AND has_outcome AND s.kind = $2" in sql


def test_rows_outside_a_partial_index_are_searched_by_their_complement() -> None:
    query = unindexed_rest_query(KINDS["tasks"], MODEL, 384, "VEC", Filters(), 10, " AND has_outcome")
    assert "NOT (true AND has_outcome)" in _normalised(query.sql)


def test_filters_are_checked_against_the_kind() -> None:
    with pytest.raises(ValueError, match="does not apply to tasks"):
        filter_clauses(KINDS["tasks"], Filters(source="chat"), 2)
    with pytest.raises(ValueError, match="does not apply to messages"):
        filter_clauses(KINDS["messages"], Filters(status="pending"), 2)
    when = datetime(2026, 1, 1, tzinfo=UTC)
    clauses = filter_clauses(KINDS["tasks"], Filters(status="pending", since=when), 2)
    assert _normalised(clauses.sql) == "AND s.occurred_at >= $2 AND s.status = $3"
    assert clauses.args == (when, "pending")


def test_text_query_uses_websearch_syntax_on_the_generated_column() -> None:
    query = text_query(KINDS["messages"], "refund -crash", Filters(thread_id="t1"), 40)
    sql = _normalised(query.sql)
    assert "websearch_to_tsquery('english', $1)" in sql and "s.search_text @@ q" in sql
    assert "s.thread_id = $2" in sql and "LIMIT 40" in sql
    assert query.args == ("refund -crash", "t1")
