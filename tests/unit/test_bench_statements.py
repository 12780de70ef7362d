"""The database reference loop's arithmetic: statement shapes, top statements, busy time."""

from __future__ import annotations

import pytest

from streams.bench.statements import (
    QueryTiming,
    busy_seconds,
    loop_figures,
    normalise_sql,
    top_statements,
)


@pytest.mark.parametrize(
    ("raw", "shape"),
    [
        (
            "SELECT  event_id\n   FROM inbox\n WHERE stream = $1",
            "SELECT event_id FROM inbox WHERE stream = $1",
        ),
        ("BEGIN;", "BEGIN"),
        ("SELECT 1 FROM t LIMIT 25", "SELECT ? FROM t LIMIT ?"),
        ("SELECT * FROM vectors_m1 WHERE x > 0.5", "SELECT * FROM vectors_m1 WHERE x > ?"),
        ("SELECT $12::vector(384)", "SELECT $12::vector(?)"),
        ("SET hnsw.ef_search = 80", "SET hnsw.ef_search = ?"),
        ("SELECT 'it''s', 'x' FROM t", "SELECT ?, ? FROM t"),
    ],
)
def test_statement_shapes_ignore_layout_and_constants(raw: str, shape: str) -> None:
    assert normalise_sql(raw) == shape


def test_top_statements_add_up_by_shape_costliest_first() -> None:
    timings = [
        QueryTiming("INSERT INTO inbox VALUES ($1)", 0.0, 0.002),
        QueryTiming("INSERT INTO inbox\n VALUES ($1)", 1.0, 0.002),  # same shape, other layout
        QueryTiming("SELECT * FROM t LIMIT 5", 2.0, 0.001),
        QueryTiming("SELECT * FROM t LIMIT 10", 3.0, 0.001),
        QueryTiming("COMMIT;", 4.0, 0.003),
        QueryTiming("BEGIN;", 5.0, 0.001),
    ]
    top = top_statements(timings, events=10, limit=3, width=12)
    assert [(s.sql, s.calls) for s in top] == [
        ("INSERT INTO ", 2),
        ("COMMIT", 1),
        ("SELECT * FRO", 2),  # BEGIN, the cheapest, is past the limit
    ]
    assert top[0].us_per_event == pytest.approx(400.0)
    assert top[0].share_of_database == pytest.approx(0.4)
    assert top[0].as_dict() == {
        "sql": "INSERT INTO ",
        "calls": 2,
        "total_ms": 4.0,
        "us_per_event": 400.0,
        "share_of_database": 0.4,
    }
    assert top_statements([], events=10) == []


@pytest.mark.parametrize(
    ("intervals", "busy"),
    [
        ([], 0.0),
        ([(0.0, 1.0)], 1.0),
        ([(0.0, 1.0), (2.0, 3.0)], 2.0),  # apart
        ([(0.0, 2.0), (1.0, 3.0)], 3.0),  # overlapping, on two connections
        ([(0.0, 4.0), (1.0, 2.0)], 4.0),  # one inside the other
        ([(2.0, 3.0), (0.0, 1.0), (1.0, 2.5)], 3.0),  # unordered, touching
    ],
)
def test_busy_time_counts_overlapping_statements_once(
    intervals: list[tuple[float, float]], busy: float
) -> None:
    assert busy_seconds(intervals) == pytest.approx(busy)


def test_loop_figures_report_rate_and_database_share() -> None:
    timings = [QueryTiming("SELECT 1", 0.0, 0.5), QueryTiming("SELECT 2", 0.25, 0.5)]
    figures = loop_figures(timings, events=100, batches=1, wall_s=2.0).as_dict()
    assert figures["eps"] == 50.0
    assert figures["statements"] == 2
    assert figures["database_ms_per_event"] == 10.0  # summed: 1 s over 100 events
    assert figures["db_share_of_wall"] == 0.375  # busy 0.75 s of 2 s
    assert figures["top_statements"][0]["calls"] == 2  # one shape: SELECT ?
    empty = loop_figures([], events=0, batches=0, wall_s=0.0).as_dict()
    assert (empty["eps"], empty["db_share_of_wall"], empty["top_statements"]) == (None, None, [])
