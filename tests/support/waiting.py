"""Polling helpers for tests that wait on a real broker and database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


async def eventually(
    probe: Callable[[], Awaitable[T]],
    accept: Callable[[T], bool],
    timeout_s: float = 60.0,
    interval_s: float = 0.1,
) -> T:
    """Poll `probe` until `accept(value)`; fails with the last value seen."""
    deadline = time.monotonic() + timeout_s
    value = await probe()
    while not accept(value):
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout_s}s; last value: {value!r}")
        await asyncio.sleep(interval_s)
        value = await probe()
    return value
