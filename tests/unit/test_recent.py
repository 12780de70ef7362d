"""Recent: a read reused while younger than its max age, read again after, never with max age 0."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from processors.pipeline.recent import Recent


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Source:
    """A value that changes with every read, so a reused copy is told from a fresh read."""

    def __init__(self) -> None:
        self.reads: list[str] = []

    def loader(self, key: str) -> Callable[[], Awaitable[str]]:
        async def load() -> str:
            self.reads.append(key)
            return f"{key}#{len(self.reads)}"

        return load


# (seconds after the first read, key, value served)
WITHIN_AND_AFTER = [
    (0.0, "a", "a#1"),
    (0.2, "a", "a#1"),  # younger than 0.5 s: the copy
    (0.3, "b", "b#2"),  # another key is its own read
    (0.49, "a", "a#1"),
    (0.5, "a", "a#3"),  # 0.5 s old: read again
    (0.7, "b", "b#2"),
    (0.81, "b", "b#4"),
    (0.9, "a", "a#3"),
]


def test_reuses_a_read_while_younger_than_max_age() -> None:
    clock, source = Clock(), Source()
    recent: Recent[str, str] = Recent(0.5, clock=clock)
    for offset, key, served in WITHIN_AND_AFTER:
        clock.now = 100.0 + offset
        assert asyncio.run(recent.get(key, source.loader(key))) == served, (offset, key)
    assert source.reads == ["a", "b", "a", "b"]
    assert recent.reads == 4


def test_max_age_zero_reads_every_time() -> None:
    clock, source = Clock(), Source()
    recent: Recent[str, str] = Recent(0.0, clock=clock)
    served = [asyncio.run(recent.get("a", source.loader("a"))) for _ in range(3)]
    assert served == ["a#1", "a#2", "a#3"]
    assert recent.reads == 3


def test_ages_a_read_from_when_it_started() -> None:
    clock, source = Clock(), Source()
    recent: Recent[str, str] = Recent(1.0, clock=clock)

    async def slow() -> str:
        clock.now += 0.8  # the read itself took 0.8 s
        return "slow"

    assert asyncio.run(recent.get("a", slow)) == "slow"
    clock.now = 100.99
    assert asyncio.run(recent.get("a", source.loader("a"))) == "slow"
    clock.now = 101.0
    assert asyncio.run(recent.get("a", source.loader("a"))) == "a#1"


@pytest.mark.parametrize("capacity", [1, 2, 3])
def test_keeps_at_most_capacity_keys_least_recently_used_dropped(capacity: int) -> None:
    clock, source = Clock(), Source()
    recent: Recent[str, str] = Recent(10.0, capacity=capacity, clock=clock)
    for key in ["a", "b", "c", "a"]:
        asyncio.run(recent.get(key, source.loader(key)))
    # capacity 1 and 2 dropped "a" before it came back; 3 kept it.
    assert source.reads == (["a", "b", "c"] if capacity == 3 else ["a", "b", "c", "a"])
