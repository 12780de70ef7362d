from __future__ import annotations

import itertools
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.embedders.batching import (
    OPENAI_LIMITS,
    estimate_tokens,
    plan_batches,
    truncate_to_tokens,
)


def word_count(text: str) -> int:
    return max(1, len(text.split()))


texts_strategy = st.lists(st.text(max_size=60), max_size=60)


@given(
    texts=texts_strategy,
    max_inputs=st.integers(min_value=1, max_value=8),
    max_tokens=st.integers(min_value=1, max_value=40),
)
def test_plan_covers_every_index_once_in_order_within_limits(
    texts: list[str], max_inputs: int, max_tokens: int
) -> None:
    plan = plan_batches(texts, estimate_tokens, max_inputs, max_tokens)

    assert [index for batch in plan for index in batch] == list(range(len(texts)))
    for batch in plan:
        assert 1 <= len(batch) <= max_inputs
        tokens = sum(estimate_tokens(texts[index]) for index in batch)
        # Only a text that alone exceeds the budget may break it, and then it travels alone.
        assert tokens <= max_tokens or len(batch) == 1


@given(
    texts=texts_strategy,
    max_inputs=st.integers(min_value=1, max_value=8),
    max_tokens=st.integers(min_value=1, max_value=40),
)
def test_plan_is_greedy_each_batch_closes_only_when_the_next_text_does_not_fit(
    texts: list[str], max_inputs: int, max_tokens: int
) -> None:
    plan = plan_batches(texts, estimate_tokens, max_inputs, max_tokens)
    for batch, following in itertools.pairwise(plan):
        next_tokens = estimate_tokens(texts[following[0]])
        batch_tokens = sum(estimate_tokens(texts[index]) for index in batch)
        assert len(batch) == max_inputs or batch_tokens + next_tokens > max_tokens


def test_empty_input_plans_no_batches() -> None:
    assert plan_batches([], estimate_tokens, 10, 100) == []


def test_input_count_limit_splits_batches() -> None:
    assert plan_batches(["a"] * 5, word_count, max_inputs=2, max_tokens=100) == [[0, 1], [2, 3], [4]]


def test_token_budget_splits_batches() -> None:
    texts = ["one two", "three four five", "six", "seven eight nine ten"]
    assert plan_batches(texts, word_count, max_inputs=10, max_tokens=5) == [[0, 1], [2, 3]]


def test_a_text_over_the_budget_travels_alone() -> None:
    texts = ["short", "w " * 50, "short again"]
    assert plan_batches(texts, word_count, max_inputs=10, max_tokens=10) == [[0], [1], [2]]


def test_invalid_limits_are_rejected() -> None:
    with pytest.raises(ValueError):
        plan_batches(["a"], estimate_tokens, 0, 10)
    with pytest.raises(ValueError):
        plan_batches(["a"], estimate_tokens, 10, 0)


def test_openai_limits_are_the_documented_ones() -> None:
    assert (OPENAI_LIMITS.max_inputs, OPENAI_LIMITS.max_tokens, OPENAI_LIMITS.max_tokens_per_input) == (
        2048,
        300_000,
        8192,
    )


def test_estimate_for_english_prose_is_about_four_characters_per_token() -> None:
    text = "The scheduler ranks pending work by predicted success and cost. " * 10
    assert estimate_tokens(text) == math.ceil(len(text) / 4)


def test_estimate_counts_symbols_in_code_like_text() -> None:
    code = "{a:[1,2],b:{c:3}}"  # 17 characters, 17 separate pieces
    assert estimate_tokens(code) == 17


def test_estimate_counts_each_non_ascii_character() -> None:
    assert estimate_tokens("数据库迁移失败") == 7
    assert estimate_tokens("") == 1


@given(st.text(max_size=300))
def test_estimate_is_at_least_one_and_never_below_a_quarter_of_the_characters(text: str) -> None:
    tokens = estimate_tokens(text)
    assert tokens >= 1
    assert tokens >= math.ceil(len(text) / 4)


@given(text=st.text(max_size=400), max_tokens=st.integers(min_value=1, max_value=60))
def test_truncation_keeps_a_prefix_within_the_limit(text: str, max_tokens: int) -> None:
    truncated = truncate_to_tokens(text, max_tokens, estimate_tokens)
    assert text.startswith(truncated)
    if estimate_tokens(text) <= max_tokens:
        assert truncated == text
    else:
        assert estimate_tokens(truncated) <= max_tokens


def test_truncation_keeps_the_beginning_of_a_long_input() -> None:
    text = "important title. " + "filler " * 10_000
    truncated = truncate_to_tokens(text, 100, estimate_tokens)
    assert truncated.startswith("important title.")
    assert 80 <= estimate_tokens(truncated) <= 100
