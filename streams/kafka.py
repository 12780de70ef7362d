"""aiokafka clients built from the settings (security options passed through), and the one
conversion of a consumed record into the pipeline's RawRecord."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError

from processors.records import RawRecord
from streams.settings import Settings

log = logging.getLogger(__name__)


def client_options(settings: Settings, bootstrap: str) -> dict[str, Any]:
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap,
        "security_protocol": settings.kafka_security_protocol,
    }
    if settings.kafka_sasl_mechanism:
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        if settings.kafka_sasl_password is not None:
            options["sasl_plain_password"] = settings.kafka_sasl_password.get_secret_value()
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        options["ssl_context"] = create_ssl_context(
            cafile=str(settings.kafka_ssl_cafile) if settings.kafka_ssl_cafile else None
        )
    return options


def make_producer(settings: Settings, bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    options = client_options(settings, bootstrap)
    # Small linger: batches under load, adds at most 2 ms when idle.
    options.update({"linger_ms": 2, "acks": "all", "max_batch_size": 1_048_576})
    options.update(overrides)
    return AIOKafkaProducer(**options)


# Whether each bootstrap's broker accepted an idempotent producer (asked once per process).
_IDEMPOTENCE: dict[str, bool] = {}


async def start_producer(settings: Settings, bootstrap: str, **overrides: Any) -> AIOKafkaProducer:
    """A started producer for tasksage's outputs: acks=all and, where the broker supports it, the
    idempotent producer (broker-side dedup of the producer's own retries, in order per
    partition). Tansu 0.6 answers InitProducerId with an unknown error: with
    kafka_idempotence=auto that broker gets a plain producer, and the outbox's keys dedup."""
    mode = settings.kafka_idempotence
    wanted = mode == "on" or (mode == "auto" and _IDEMPOTENCE.get(bootstrap, True))
    if wanted:
        producer = make_producer(settings, bootstrap, enable_idempotence=True, **overrides)
        try:
            await producer.start()
        except KafkaError as exc:
            await producer.stop()
            if mode == "on":
                raise
            log.warning(
                "the broker at %s refused an idempotent producer (%s): outputs use a plain one",
                bootstrap,
                exc,
            )
            _IDEMPOTENCE[bootstrap] = False
        else:
            _IDEMPOTENCE[bootstrap] = True
            return producer
    producer = make_producer(settings, bootstrap, **overrides)
    await producer.start()
    return producer


def idempotent(bootstrap: str) -> bool | None:
    """What start_producer found for this broker (None: not asked yet)."""
    return _IDEMPOTENCE.get(bootstrap)


def make_consumer(settings: Settings, bootstrap: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    options = client_options(settings, bootstrap)
    options.update(
        {
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            "max_poll_records": settings.batch_max_records,
            "max_partition_fetch_bytes": max(1_048_576, settings.max_event_bytes * 2),
        }
    )
    # Unset: the client's defaults; the worker sets its own (streams/worker/membership.py).
    if settings.session_timeout_ms is not None:
        options["session_timeout_ms"] = settings.session_timeout_ms
    if settings.heartbeat_interval_ms is not None:
        options["heartbeat_interval_ms"] = settings.heartbeat_interval_ms
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


def new_topic(settings: Settings, name: str) -> NewTopic:
    configs = {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
    return NewTopic(name, settings.topic_partitions, settings.topic_replication_factor, topic_configs=configs)


async def ensure_topics(settings: Settings, bootstrap: str, topics: list[str] | None = None) -> list[str]:
    """Create missing topics; returns those created."""
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in (topics or settings.all_topics()) if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([new_topic(settings, t) for t in wanted])
            log.info("created topics: %s", ", ".join(wanted))
        return wanted
    finally:
        await admin.close()


def to_raw(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(
        record.topic, record.partition, record.offset, record.key, record.value, record.timestamp or 0
    )


async def partitions_of(settings: Settings, bootstrap: str, topics: list[str]) -> dict[str, list[int]]:
    """Partition numbers of each topic ([] for a topic that does not exist), from the broker.
    A consumer without a group knows no topic's partitions on Apache Kafka until it fetched
    that topic; Tansu happens to send all of them."""
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    await admin.start()
    try:
        described = await admin.describe_topics(topics)
    finally:
        await admin.close()
    found: dict[str, list[int]] = {t: [] for t in topics}
    for t in described:
        if t.get("error_code", 0) == 0 and t["topic"] in found:
            found[t["topic"]] = sorted(p["partition"] for p in t["partitions"])
    return found


def starved_members(partitions: dict[str, int], members: int) -> list[str]:
    """Warnings for input topics with fewer partitions than the group has members: the extra
    members of that topic get nothing of it to do."""
    return [
        f"topic {topic} has {count} partitions but group has {members} members: "
        f"{members - count} of them get none of its records (add partitions or run fewer workers)"
        for topic, count in sorted(partitions.items())
        if 0 < count < members
    ]


async def group_members(settings: Settings, bootstrap: str) -> int:
    """How many members the consumer group has now (classic protocol), per the broker."""
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    await admin.start()
    try:
        responses = await admin.describe_consumer_groups([settings.consumer_group])
    finally:
        await admin.close()
    count = 0
    for response in responses:
        for group in response.to_object()["groups"]:
            if group["group"] == settings.consumer_group:
                count = max(count, len(group["members"]))
    return count


async def warn_if_starved(settings: Settings, bootstrap: str) -> list[str]:
    """Log a warning per input topic with fewer partitions than the group has members."""
    try:
        members = await group_members(settings, bootstrap)
        found = await partitions_of(settings, bootstrap, list(settings.input_topics.values()))
    except Exception as exc:  # a check only: never fails an assignment
        log.debug("cannot compare partitions with group members: %s", exc)
        return []
    warnings = starved_members({t: len(p) for t, p in found.items()}, members)
    for text in warnings:
        log.warning("%s", text)
    return warnings


async def cluster_id(settings: Settings, bootstrap: str) -> str | None:
    """The broker's cluster id (None: it reports none)."""
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    await admin.start()
    try:
        described = await asyncio.wait_for(admin.describe_cluster(), settings.log_check_timeout_s * 2)
    finally:
        await admin.close()
    found = described.get("cluster_id")
    return found if isinstance(found, str) else None
