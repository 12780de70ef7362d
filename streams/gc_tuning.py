"""Garbage-collector settings for a long-running process (the worker, the API).

CPython's cyclic collector scans every tracked object of the generations it collects. A worker
builds some 60k long-lived objects at start (modules, pydantic models, pools, the embedder) and
then allocates short-lived rows, events and futures by the million; the API builds its app, its
OpenAPI document and the same pools and models, then allocates per request. With the defaults,
each full collection walked the start-up objects again: 67 ms pauses on this 2-core machine, 10%
of the worker's CPU in a task-created benchmark, and pauses that land in the latency tail.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def settle_after_start(young_threshold: int) -> None:
    """Collect what start-up left behind, freeze the survivors (they are never scanned again,
    and never freed: they live as long as the process anyway), and collect young objects every
    `young_threshold` allocations. 0: leave the interpreter's settings alone."""
    if young_threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(young_threshold, older, oldest)
    log.debug(
        "garbage collector: %d start-up objects frozen, young threshold %d",
        gc.get_freeze_count(),
        young_threshold,
    )
