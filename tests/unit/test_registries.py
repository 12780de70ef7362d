"""The extension-point registries: input streams and embedding providers are listed once, and
everything that names them reads the lists."""

from __future__ import annotations

import typing

import pytest

from processors.contracts.codec import SCHEMA_NAMES
from processors.contracts.inputs import BY_NAME, DECODERS, INPUT_STREAMS, STREAM_NAMES
from processors.embedders import HashingEmbedder, create_embedder
from processors.embedders.base import EmbedderConfig, ProviderName
from processors.embedders.metered import LOCAL_PROVIDERS
from processors.embedders.providers import LOCAL_PROVIDER_NAMES, PROVIDER_NAMES, PROVIDERS
from processors.errors import ConfigurationError, InvalidEvent
from streams.bench.report import STREAMS
from streams.settings import Settings


def test_the_three_input_streams_in_publishing_order() -> None:
    assert STREAM_NAMES == ("task-created", "execution-result", "message-ingested")
    assert STREAMS == STREAM_NAMES
    assert set(DECODERS) == set(BY_NAME) == set(STREAM_NAMES)


def test_each_input_stream_has_a_schema_a_key_field_and_a_topic_setting() -> None:
    settings = Settings.model_validate({})
    for stream in INPUT_STREAMS:
        assert stream.name in SCHEMA_NAMES
        assert stream.key_field in set(stream.event_type.__struct_fields__)
        assert settings.input_topics[stream.name] == getattr(settings, stream.topic_setting)
    assert settings.input_topics == {
        "task-created": "task-created",
        "execution-result": "execution-result",
        "message-ingested": "message-ingested",
    }


@pytest.mark.parametrize("stream", STREAM_NAMES)
def test_each_decoder_rejects_what_is_not_its_event(stream: str) -> None:
    with pytest.raises(InvalidEvent):
        DECODERS[stream](b'{"event_id": "x"}', 1_000_000)


def test_providers_listed_once_match_the_typed_setting() -> None:
    assert PROVIDER_NAMES == typing.get_args(ProviderName) == ("hash", "local", "openai")
    assert tuple(PROVIDERS) == PROVIDER_NAMES
    assert LOCAL_PROVIDER_NAMES == ("hash", "local")
    assert frozenset(LOCAL_PROVIDER_NAMES) == LOCAL_PROVIDERS


def test_the_factory_builds_from_the_registry() -> None:
    assert isinstance(create_embedder(EmbedderConfig(provider="hash", dimension=16)), HashingEmbedder)
    with pytest.raises(ConfigurationError, match="unknown embedding provider"):
        create_embedder(EmbedderConfig(provider="nope"))  # type: ignore[arg-type]
