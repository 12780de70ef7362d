"""merge_exact: approximate hits and exactly compared unindexed vectors, merged."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from processors.search.nearest import merge_exact, unit_rows


def vec(*xs: float) -> np.ndarray:
    return np.array(xs, dtype=np.float32)


def test_unindexed_rows_join_the_approximate_hits_in_order_of_similarity() -> None:
    queries = [vec(1, 0), vec(0, 1)]
    approximate = [[("a", 0.9), ("b", 0.2)], [("a", 0.1)]]
    ids = ["q1", "q2"]
    rows = unit_rows(np.vstack([vec(1, 0.1), vec(0, 3)]))
    merged = merge_exact(approximate, queries, ["self", "self"], ids, rows, limit=2)
    assert [t for t, _ in merged[0]] == ["q1", "a"]  # cos 0.995 beats 0.9
    assert [t for t, _ in merged[1]] == ["q2", "a"]
    assert merged[1][0][1] == 1.0


def test_the_querying_task_is_never_its_own_neighbour() -> None:
    merged = merge_exact(
        [[("me", 1.0), ("x", 0.5)]], [vec(1, 0)], ["me"], ["me"], unit_rows(np.vstack([vec(1, 0)])), 5
    )
    assert merged == [[("x", 0.5)]]


def test_no_unindexed_rows_leaves_the_approximate_hits() -> None:
    merged = merge_exact([[("b", 0.3), ("a", 0.7)]], [vec(1, 0)], ["me"], [], np.zeros((0, 2), np.float32), 1)
    assert merged == [[("a", 0.7)]]


def test_an_id_in_both_lists_appears_once() -> None:
    rows = unit_rows(np.vstack([vec(1, 0)]))
    merged = merge_exact([[("a", 1.0)]], [vec(2, 0)], ["me"], ["a"], rows, 5)
    assert merged == [[("a", 1.0)]]


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 4),
    st.integers(0, 12),
    st.integers(0, 6),
    st.integers(1, 8),
    st.integers(0, 2**31 - 1),
)
def test_equals_brute_force_over_the_union(
    queries_n: int, rows_n: int, hits_n: int, limit: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    queries = [rng.normal(size=4).astype(np.float32) for _ in range(queries_n)]
    ids = [f"u{i}" for i in range(rows_n)]
    rows = unit_rows(rng.normal(size=(rows_n, 4)).astype(np.float32))
    approximate = [
        [(f"h{q}-{j}", float(rng.uniform(-1, 1))) for j in range(hits_n)] for q in range(queries_n)
    ]
    exclude = ["u0" if q % 2 else "none" for q in range(queries_n)]
    merged = merge_exact(approximate, queries, exclude, ids, rows, limit)
    for q, query in enumerate(queries):
        unit = query / np.linalg.norm(query)
        union = dict(approximate[q]) | {t: float(rows[j] @ unit) for j, t in enumerate(ids)}
        union.pop(exclude[q], None)
        expected = sorted(union.items(), key=lambda p: (-p[1], p[0]))[:limit]
        assert [t for t, _ in merged[q]] == [t for t, _ in expected]
        assert np.allclose([s for _, s in merged[q]], [s for _, s in expected], atol=1e-5)
