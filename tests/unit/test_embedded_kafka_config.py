"""The Apache Kafka launcher's configuration and jar cache rules (no JVM started)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from streams import embedded_kafka
from streams.embedded_kafka import POM, EmbeddedKafka, cluster_id, jars_dir, jars_ready, kafka_version


def test_one_node_kraft_properties_listen_where_asked_and_keep_the_log_in_the_data_dir(
    tmp_path: Path,
) -> None:
    broker = EmbeddedKafka(19999, tmp_path / "k", jars=tmp_path, overrides={"log.retention.hours": "1"})
    props = broker.properties()
    assert props["process.roles"] == "broker,controller"
    assert (
        props["listeners"] == f"PLAINTEXT://127.0.0.1:19999,CONTROLLER://127.0.0.1:{broker.controller_port}"
    )
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:19999"
    assert props["controller.quorum.voters"] == f"1@127.0.0.1:{broker.controller_port}"
    assert props["log.dirs"] == str((tmp_path / "k" / "log").resolve())
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["log.retention.hours"] == "1"  # overrides win
    assert broker.bootstrap == "127.0.0.1:19999"


def test_the_jar_cache_is_per_version_and_stamped_with_the_pom(tmp_path: Path) -> None:
    version = kafka_version(POM)
    assert version.startswith("4.")
    target = jars_dir(tmp_path)
    assert target == tmp_path / f"kafka-{version}" / "libs"
    assert not jars_ready(tmp_path)
    target.mkdir(parents=True)
    (target / ".pom-sha256").write_text("not the pom's hash\n")
    assert not jars_ready(tmp_path), "a changed pom must fetch again"


def test_a_cluster_id_never_starts_with_a_dash_which_the_format_tool_would_read_as_an_option(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # 0xf8 encodes to '-' in URL-safe base64: the first draw would start with it.
    draws = iter([uuid.UUID(bytes=bytes([0xF8]) + bytes(15)), uuid.UUID(bytes=bytes([0x04]) + bytes(15))])
    monkeypatch.setattr(embedded_kafka.uuid, "uuid4", lambda: next(draws))
    assert cluster_id() == "BAAAAAAAAAAAAAAAAAAAAA"
    assert next(draws, None) is None  # drew again once, no more
