"""The worker's BLAS thread cap (streams/worker/blas.py)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from streams.worker.blas import limit_blas_threads


def _blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def restored_blas() -> Iterator[None]:
    np.ones((2, 2)) @ np.ones((2, 2))  # the BLAS numpy uses is loaded
    with threadpool_limits(limits=None):  # whatever the test sets is undone on exit
        yield


def test_the_cap_holds_after_the_call_and_zero_leaves_the_library_alone(restored_blas: None) -> None:
    before = _blas_threads()
    assert before, "numpy's BLAS is visible to threadpoolctl"
    limit_blas_threads(0)
    assert _blas_threads() == before
    limit_blas_threads(1)
    assert _blas_threads() == {1}
