"""Pure batch planning for embedding requests, and a token estimate that needs no tokenizer files.

tiktoken is deliberately not used: it downloads its BPE tables at run time, which fails offline.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

TokenCounter = Callable[[str], int]

# Words and single punctuation marks: code and symbol-heavy text costs about one token per piece.
_TOKEN_PIECE = re.compile(r"\w+|[^\w\s]")


@dataclass(frozen=True, slots=True)
class RequestLimits:
    """Per-request limits of an embeddings API."""

    max_inputs: int
    max_tokens: int
    max_tokens_per_input: int


OPENAI_LIMITS = RequestLimits(max_inputs=2048, max_tokens=300_000, max_tokens_per_input=8192)


def estimate_tokens(text: str) -> int:
    """Conservative token estimate for BPE tokenizers such as cl100k.

    ASCII prose runs about 4 characters per token; every non-ASCII character is counted as a token
    (CJK is ~1 token per character, other scripts less); text with many short words or symbols is
    counted at one token per word or mark. The larger estimate wins so budgets are rarely exceeded.
    Never returns less than 1, so an empty text still occupies a slot in a token budget.
    """
    if text.isascii():
        by_chars = math.ceil(len(text) / 4)
    else:
        ascii_chars = len(text.encode("ascii", "ignore"))
        by_chars = math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)
    by_pieces = len(_TOKEN_PIECE.findall(text))
    return max(1, by_chars, by_pieces)


def truncate_to_tokens(text: str, max_tokens: int, count_tokens: TokenCounter) -> str:
    """Keep the longest leading part of `text` whose token count is within `max_tokens`.

    Rule: an over-long input keeps its beginning (titles and first sentences carry most meaning);
    the cut is first estimated proportionally, then shortened by 10% steps until it fits.
    """
    if max_tokens < 1:
        raise ValueError("max_tokens must be at least 1")
    tokens = count_tokens(text)
    if tokens <= max_tokens:
        return text
    cut = len(text) * max_tokens // tokens
    while cut > 0 and count_tokens(text[:cut]) > max_tokens:
        cut = cut * 9 // 10
    return text[:cut]


def plan_batches(
    texts: Sequence[str],
    count_tokens: TokenCounter,
    max_inputs: int,
    max_tokens: int,
) -> list[list[int]]:
    """Split texts into request batches of indices, in input order, within both limits.

    Greedy and order-preserving: a batch is closed as soon as the next text would exceed
    `max_inputs` or `max_tokens`. A single text whose own count exceeds `max_tokens` is never
    split or dropped here: it gets a batch of its own (callers truncate over-long inputs to the
    provider's per-input limit before planning, see `truncate_to_tokens`).
    """
    if max_inputs < 1 or max_tokens < 1:
        raise ValueError("max_inputs and max_tokens must be at least 1")
    batches: list[list[int]] = []
    current: list[int] = []
    current_tokens = 0
    for index, text in enumerate(texts):
        tokens = count_tokens(text)
        if current and (len(current) >= max_inputs or current_tokens + tokens > max_tokens):
            batches.append(current)
            current, current_tokens = [], 0
        current.append(index)
        current_tokens += tokens
    if current:
        batches.append(current)
    return batches
