"""The start-up check that warns when an input topic has fewer partitions than the group has
members (the extra members get nothing of that topic)."""

from __future__ import annotations

from streams.kafka import starved_members


def test_a_topic_with_fewer_partitions_than_members_is_named_with_the_idle_count() -> None:
    warnings = starved_members({"task-created": 2, "execution-result": 4, "message-ingested": 1}, 3)
    assert warnings == [
        "topic message-ingested has 1 partitions but group has 3 members: 2 of them get none of "
        "its records (add partitions or run fewer workers)",
        "topic task-created has 2 partitions but group has 3 members: 1 of them get none of its "
        "records (add partitions or run fewer workers)",
    ]


def test_enough_partitions_or_a_missing_topic_says_nothing() -> None:
    assert starved_members({"task-created": 4, "execution-result": 3}, 3) == []
    assert starved_members({"task-created": 0}, 2) == []  # not created yet: ensure_topics will
