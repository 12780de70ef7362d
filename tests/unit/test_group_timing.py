"""Group timing by broker when unset (streams/worker/membership.py)."""

from __future__ import annotations

import pytest

from streams.settings import Settings
from streams.worker.membership import GroupTiming, group_timing


@pytest.mark.parametrize(
    ("cluster_id", "configured", "expected"),
    [
        ("tansu_cluster", {}, GroupTiming(2000, 500)),
        ("MkU3OEVBNTcwNTJENDM2Qk", {}, GroupTiming(6000, 1000)),
        (None, {}, GroupTiming(6000, 1000)),
        ("tansu_cluster", {"session_timeout_ms": 10000}, GroupTiming(10000, 1000)),
        ("tansu_cluster", {"session_timeout_ms": 1200}, GroupTiming(1200, 300)),
        ("kafka", {"session_timeout_ms": 45000, "heartbeat_interval_ms": 3000}, GroupTiming(45000, 3000)),
        ("kafka", {"heartbeat_interval_ms": 250}, GroupTiming(6000, 250)),
    ],
)
def test_unset_timing_follows_the_broker_and_set_timing_is_kept(
    cluster_id: str | None, configured: dict[str, int], expected: GroupTiming
) -> None:
    assert group_timing(Settings.model_validate(configured), cluster_id) == expected
