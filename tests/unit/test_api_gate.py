"""The API's per-token rate limit (streams/api/auth.py Gate): the limits library's moving window."""

from __future__ import annotations

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
