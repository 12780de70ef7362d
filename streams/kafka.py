"""aiokafka clients built from the settings (security options passed through), and the one
conversion of a consumed record into the pipeline's RawRecord."""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

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


def make_consumer(settings: Settings, bootstrap: str, *topics: str, **overrides: Any) -> AIOKafkaConsumer:
    options = client_options(settings, bootstrap)
    options.update(
        {
            "enable_auto_commit": False,
            "auto_offset_reset": "earliest",
            "fetch_max_wait_ms": settings.fetch_max_wait_ms,
            "max_poll_records": settings.batch_max_records,
            "session_timeout_ms": settings.session_timeout_ms,
            "heartbeat_interval_ms": settings.heartbeat_interval_ms,
            "max_partition_fetch_bytes": max(1_048_576, settings.max_event_bytes * 2),
        }
    )
    options.update(overrides)
    return AIOKafkaConsumer(*topics, **options)


async def ensure_topics(settings: Settings, bootstrap: str, topics: list[str] | None = None) -> list[str]:
    """Create missing topics; returns those created."""
    admin = AIOKafkaAdminClient(**client_options(settings, bootstrap))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [t for t in (topics or settings.all_topics()) if t not in existing]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):
                await admin.create_topics([NewTopic(t, settings.topic_partitions, 1) for t in wanted])
            log.info("created topics: %s", ", ".join(wanted))
        return wanted
    finally:
        await admin.close()


def to_raw(record: ConsumerRecord[bytes, bytes]) -> RawRecord:
    return RawRecord(
        record.topic, record.partition, record.offset, record.key, record.value, record.timestamp or 0
    )
