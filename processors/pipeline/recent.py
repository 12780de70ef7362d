"""Reads that a read-only caller may reuse for a short while.

The worker reads what it decides against (arm statistics, adapted profiles, the index queue, the
learned layer's version) afresh for every batch. The API decides one task a request, hundreds a
second, against those same few rows: read for every request they were the larger part of a
recommendation's cost in PostgreSQL and a good part in the API. A copy younger than `max_age_s`
is reused (the freshness a client gives up is that age: outcomes that arrive meanwhile count
from the next read); `max_age_s` 0 reads every time, as the worker does.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Recent(Generic[Key, Value]):
    """The latest value read for each key and when its read started; at most `capacity` keys
    (one per kind a caller decides for), the least recently used dropped first."""

    def __init__(
        self, max_age_s: float, *, capacity: int = 256, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_age_s = max_age_s
        self.capacity = capacity
        self.clock = clock
        self.reads = 0  # loads actually run (the rest were served from a copy)
        self._entries: OrderedDict[Key, tuple[float, Value]] = OrderedDict()

    async def get(self, key: Key, load: Callable[[], Awaitable[Value]]) -> Value:
        """The copy for `key` if younger than max_age_s, else a fresh `load()` (kept)."""
        started = self.clock()
        if self.max_age_s > 0 and (entry := self._entries.get(key)) is not None:
            read_at, value = entry
            if started - read_at < self.max_age_s:
                self._entries.move_to_end(key)
                return value
        value = await load()
        self.reads += 1
        if self.max_age_s > 0:
            # Aged from when the read started: what it saw may be that old already.
            self._entries[key] = (started, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.capacity:
                self._entries.popitem(last=False)
        return value
