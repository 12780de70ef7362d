"""The garbage-collector settings of the worker and the API (streams/gc_tuning.py)."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from streams.gc_tuning import settle_after_start


@pytest.fixture
def restored_collector() -> Iterator[tuple[int, int, int]]:
    """A collector with nothing frozen (an in-process API in an earlier test may have frozen the
    test process's objects), put back as it was found apart from the freeze."""
    gc.unfreeze()
    before = gc.get_threshold()
    yield before
    gc.unfreeze()
    gc.set_threshold(*before)


class _Node:
    def __init__(self) -> None:
        self.me = self  # a cycle: only the cyclic collector frees it


def test_start_up_objects_are_frozen_and_young_ones_collected_less_often(
    restored_collector: tuple[int, int, int],
) -> None:
    assert gc.get_freeze_count() == 0
    settle_after_start(10_000)
    assert gc.get_freeze_count() > 1000  # the modules and objects this process built so far
    assert gc.get_threshold() == (10_000, *restored_collector[1:])
    garbage = _Node()
    gone = weakref.ref(garbage)
    del garbage
    gc.collect()
    assert gone() is None, "cycles made after start are still collected"


def test_zero_keeps_the_interpreter_defaults(restored_collector: tuple[int, int, int]) -> None:
    settle_after_start(0)
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == restored_collector
