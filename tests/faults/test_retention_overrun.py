"""Retention deletes records a stopped worker never processed: the worker must say how many,
loudly (log, metric, /healthz), go on from the log start, and not loop on it.

Apache Kafka only: Tansu 0.6 has no retention, so nothing there can overrun a position."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from prometheus_client import REGISTRY

from processors.contracts import encode
from processors.demo_workload import SampleWorkload
from streams.kafka import client_options, make_consumer
from tests.faults.conftest import report
from tests.support.topics import send_raw, wait_consumed

pytestmark = pytest.mark.slow


async def _offsets(settings, topic: str) -> tuple[int, int]:
    """(log start, log end) of partition 0."""
    tp = TopicPartition(topic, 0)
    consumer = make_consumer(settings, settings.kafka_bootstrap_servers, group_id=None)
    await consumer.start()
    try:
        return (await consumer.beginning_offsets([tp]))[tp], (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


async def _set_retention(settings, topic: str, retention_ms: int) -> None:
    admin = AIOKafkaAdminClient(**client_options(settings, settings.kafka_bootstrap_servers))
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic, {"retention.ms": str(retention_ms), "segment.ms": "300"}
                )
            ]
        )
    finally:
        await admin.close()


async def test_records_deleted_by_retention_before_processing_are_counted_and_skipped_once(
    broker_kind, make_settings, endpoints, worker_factory, caplog
) -> None:
    if broker_kind != "kafka":
        pytest.skip("Tansu 0.6 has no retention: nothing can be deleted under a stored position")
    settings = make_settings(topic_partitions=1)
    topic = settings.topic_task_created
    admin = AIOKafkaAdminClient(**client_options(settings, settings.kafka_bootstrap_servers))
    await admin.start()
    try:  # small segments, so retention can delete whole segments within seconds
        await admin.create_topics([NewTopic(topic, 1, 1, topic_configs={"segment.ms": "300"})])
    finally:
        await admin.close()
    tasks = [encode(s.task) for s in SampleWorkload(seed=11).tasks(400)]
    records = iter([(None, value) for value in tasks])
    first = [next(records) for _ in range(40)]
    caplog.set_level(logging.ERROR, logger="streams.worker.log_integrity")
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        async with worker_factory(settings):
            await send_raw(settings, topic, first)
            await wait_consumed(conn, settings, {topic: 40})
        stored = await conn.fetchval(
            "SELECT next_offset FROM consumer_positions WHERE group_id = $1 AND topic = $2",
            settings.consumer_group,
            topic,
        )
        assert stored == 40

        # The worker is stopped; records arrive and retention (2 s) deletes closed segments.
        await send_raw(settings, topic, [next(records) for _ in range(60)])
        await _set_retention(settings, topic, 2000)
        deadline = time.monotonic() + 90
        while (await _offsets(settings, topic))[0] <= stored:
            assert time.monotonic() < deadline, "retention deleted nothing within 90 s"
            await send_raw(settings, topic, [next(records)])  # rolls the active segment
            await asyncio.sleep(0.5)
        await _set_retention(settings, topic, -1)  # no more deletions: the loss is now fixed
        await asyncio.sleep(3)  # one retention check interval, in case one was under way
        log_start, log_end = await _offsets(settings, topic)
        lost = log_start - stored
        before = REGISTRY.get_sample_value(
            "tasksage_records_lost_to_retention_total", {"topic": topic, "partition": "0"}
        )

        async with worker_factory(settings) as (_, worker):
            await wait_consumed(conn, settings, {topic: log_end})
            notices = worker.health.notices
        async with worker_factory(settings):  # a second start finds a valid position: no new loss
            await wait_consumed(conn, settings, {topic: log_end})
        applied = await conn.fetchval("SELECT count(*) FROM tasks")
        position = await conn.fetchval(
            "SELECT next_offset FROM consumer_positions WHERE group_id = $1 AND topic = $2",
            settings.consumer_group,
            topic,
        )
    finally:
        await conn.close()
    counted = REGISTRY.get_sample_value(
        "tasksage_records_lost_to_retention_total", {"topic": topic, "partition": "0"}
    )
    said = [r.getMessage() for r in caplog.records if "RECORDS LOST TO RETENTION" in r.getMessage()]
    report("retention-overrun", published=log_end, stored=stored, log_start=log_start, lost=lost)
    assert lost > 0
    assert (counted or 0) - (before or 0) == lost
    assert len(said) == 1, said
    assert f"{lost} records (offsets {stored}..{log_start - 1})" in said[0]
    assert f"{topic}[0] {lost} records deleted before they were processed" in "".join(notices.values())
    # Everything before the deleted range and everything after it was applied once; the
    # deleted records never were.
    assert applied == stored + (log_end - log_start)
    assert position == log_end
