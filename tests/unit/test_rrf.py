"""Reciprocal rank fusion: the formula, weights, k, ties, and its invariants."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.search.fusion import reciprocal_rank_fusion


def test_scores_follow_the_formula() -> None:
    fused = {f.id: f for f in reciprocal_rank_fusion([["a", "b", "c"], ["c", "a"]], k=60)}
    assert fused["a"].score == pytest.approx(1 / 61 + 1 / 62)
    assert fused["b"].score == pytest.approx(1 / 62)
    assert fused["c"].score == pytest.approx(1 / 63 + 1 / 61)
    assert fused["a"].ranks == (1, 2)
    assert fused["b"].ranks == (2, None)


def test_a_document_found_by_both_rankings_beats_one_found_by_one() -> None:
    # "x" is only second in each list, but agreement wins over a single first place.
    fused = reciprocal_rank_fusion([["v1", "x", "v3"], ["t1", "x", "t3"]])
    assert fused[0].id == "x"


def test_weights_tilt_the_fusion_towards_one_ranking() -> None:
    rankings = [["vec"], ["text"]]
    assert reciprocal_rank_fusion(rankings, [2.0, 1.0])[0].id == "vec"
    assert reciprocal_rank_fusion(rankings, [1.0, 2.0])[0].id == "text"
    only_text = reciprocal_rank_fusion(rankings, [0.0, 1.0])
    assert [f.id for f in only_text] == ["text", "vec"]
    assert only_text[1].score == 0.0


def test_small_k_lets_the_head_of_a_list_dominate() -> None:
    # a: first in one list only; b: third in both.
    rankings = [["a", "x", "b"], ["y", "z", "b"]]
    assert reciprocal_rank_fusion(rankings, k=0)[0].id == "a"  # 1/1 > 2/3
    assert reciprocal_rank_fusion(rankings, k=60)[0].id == "b"  # 2/63 > 1/61


def test_ties_are_broken_by_best_rank_then_id_so_output_is_stable() -> None:
    fused = reciprocal_rank_fusion([["b", "a"], ["a", "b"]])
    assert [f.id for f in fused] == ["a", "b"]  # equal scores, equal best rank: by id
    assert fused[0].score == fused[1].score


def test_a_repeated_id_counts_at_its_first_position() -> None:
    fused = reciprocal_rank_fusion([["a", "b", "a"]])
    assert [(f.id, f.ranks) for f in fused] == [("a", (1,)), ("b", (2,))]


def test_invalid_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="weights"):
        reciprocal_rank_fusion([["a"], ["b"]], [1.0])
    with pytest.raises(ValueError, match="negative"):
        reciprocal_rank_fusion([["a"]], [-1.0])
    with pytest.raises(ValueError, match="k"):
        reciprocal_rank_fusion([["a"]], k=-1)


def test_no_rankings_fuse_to_nothing() -> None:
    assert reciprocal_rank_fusion([]) == []
    assert reciprocal_rank_fusion([[], []]) == []


ids = st.lists(st.sampled_from("abcdefghij"), max_size=10, unique=True)


@given(st.lists(ids, min_size=1, max_size=4))
def test_fusion_covers_every_input_and_scores_never_increase(rankings: list[list[str]]) -> None:
    fused = reciprocal_rank_fusion(rankings)
    assert {f.id for f in fused} == {i for r in rankings for i in r}
    scores = [f.score for f in fused]
    assert scores == sorted(scores, reverse=True)


@given(st.lists(ids.filter(bool), min_size=1, max_size=4))
def test_an_id_first_in_every_ranking_is_first_after_fusion(rankings: list[list[str]]) -> None:
    leader = rankings[0][0]
    rankings = [[leader, *[i for i in r if i != leader]] for r in rankings]
    assert reciprocal_rank_fusion(rankings)[0].id == leader
