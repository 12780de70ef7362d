"""The neighbour search's HNSW candidate list: default, configured, never below its LIMIT."""

from __future__ import annotations

import pytest

from processors.postgres.knowledge import NEIGHBOUR_EF_FLOOR, NeighbourQuery


def _limit(query: NeighbourQuery) -> int:
    return int(query.many_sql.rsplit("LIMIT", 1)[1].split()[0])


def test_default_keeps_a_small_margin_over_the_limit() -> None:
    query = NeighbourQuery("hash-384", 384, k=20)
    assert _limit(query) == query.candidates == 21
    assert query.ef_search == 25


@pytest.mark.parametrize("k", [0, 1, 5])
def test_small_k_keeps_the_floor(k: int) -> None:
    assert NeighbourQuery("hash-384", 384, k=k).ef_search == NEIGHBOUR_EF_FLOOR


@pytest.mark.parametrize(("configured", "expected"), [(60, 60), (21, 21), (5, 21)])
def test_configured_value_wins_but_never_below_the_limit(configured: int, expected: int) -> None:
    assert NeighbourQuery("hash-384", 384, k=20, ef_search=configured).ef_search == expected
