"""A worker warns when an input topic has fewer partitions than its group has members."""

from __future__ import annotations

import logging

from streams.kafka import warn_if_starved
from tests.support.waiting import eventually


async def test_two_workers_on_one_partition_topics_are_warned_about(
    make_settings, worker_factory, caplog
) -> None:
    settings = make_settings(topic_partitions=1)
    caplog.set_level(logging.WARNING, logger="streams.kafka")
    async with worker_factory(settings), worker_factory(settings) as (runtime, _):
        # Both joined once the check sees two members (it runs after each assignment too).
        warnings = await eventually(
            lambda: warn_if_starved(settings, runtime.endpoints.bootstrap),
            lambda w: len(w) == 3,
            timeout_s=60,
        )
    assert warnings == [
        f"topic {topic} has 1 partitions but group has 2 members: 1 of them get none of its records "
        "(add partitions or run fewer workers)"
        for topic in sorted(settings.input_topics.values())
    ]
    assert any("group has 2 members" in r.getMessage() for r in caplog.records)
