"""The API's per-token rate limit (streams/api/auth.py Gate): the limits library's sliding window
counter."""

from __future__ import annotations

import asyncio

import pytest

from streams.api.auth import Gate
from streams.api.errors import ApiError


async def test_at_most_the_limit_per_caller_then_429_with_retry_after() -> None:
    gate = Gate([], "3/minute")
    for _ in range(3):
        await gate.throttle("a")
    with pytest.raises(ApiError) as refused:
        await gate.throttle("a")
    assert refused.value.status == 429 and refused.value.retriable
    assert 1 <= int(refused.value.headers["Retry-After"]) <= 61
    await gate.throttle("b")  # another caller has a window of its own


async def test_a_caller_past_its_limit_is_let_in_again_once_its_windows_have_passed() -> None:
    gate = Gate([], "2/second")
    await gate.throttle("a")
    await gate.throttle("a")
    with pytest.raises(ApiError):
        await gate.throttle("a")
    # The sliding window counter weighs the previous window in: two whole windows later it is empty.
    await asyncio.sleep(2.05)
    await gate.throttle("a")
    await gate.throttle("a")
    with pytest.raises(ApiError):
        await gate.throttle("a")
