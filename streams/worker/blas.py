"""BLAS threads of a worker process: one by default.

The worker's matrix products are small: a batch's vectors against the few hundred still queued
for an index, a message batch against itself. Multi-threaded OpenBLAS hands part of each to a
second thread, which then spins waiting for more work. Measured on this 2-core machine, a
10x384 by 384x300 product cost 2.3 ms of CPU with the default threads and 0.15 ms with one,
and the spinning core is the one PostgreSQL and the broker need. The local embedder already
runs each forward pass on one BLAS thread (its own threads are the parallelism).
"""

from __future__ import annotations

import logging

from threadpoolctl import threadpool_limits

log = logging.getLogger(__name__)


def limit_blas_threads(threads: int) -> None:
    """Cap the BLAS libraries this process has loaded at `threads`, for good. 0: leave them."""
    if threads <= 0:
        return
    threadpool_limits(limits=threads, user_api="blas")
    log.debug("BLAS limited to %d thread(s)", threads)
