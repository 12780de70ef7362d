"""docker-compose.yml runs the broker the test suite proves: the same Apache Kafka version."""

from __future__ import annotations

import re
from pathlib import Path

from streams.embedded_kafka import kafka_version

COMPOSE = Path(__file__).resolve().parents[2] / "docker-compose.yml"


def test_the_compose_kafka_image_is_the_version_the_tests_run() -> None:
    images = re.findall(r"image:\s*apache/kafka:(\S+)", COMPOSE.read_text())
    assert images == [kafka_version()]
