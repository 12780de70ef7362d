"""OpenAIEmbedder against a real HTTP server (tests/support/fake_openai.py) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest

# The bare `pytest` script does not put the repository root on sys.path; tests.support needs it.
_REPOSITORY_ROOT = str(Path(__file__).resolve().parents[2])
if _REPOSITORY_ROOT not in sys.path:
    sys.path.insert(0, _REPOSITORY_ROOT)

from processors.embedders import (  # noqa: E402
    CircuitState,
    EmbedderConfig,
    OpenAIEmbedder,
    RequestLimits,
    create_embedder,
)
from processors.embedders.base import Embedder, Vector  # noqa: E402
from processors.errors import ConfigurationError, EmbeddingUnavailable, WrongDimension  # noqa: E402
from tests.support.fake_openai import FakeOpenAIServer, Fault  # noqa: E402

API_KEY = "sk-test-do-not-log-me"
DIMENSION = 16

MakeEmbedder = Callable[..., OpenAIEmbedder]


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(default_dimension=1536, hang_s=3.0) as running:
        yield running


def config_for(server: FakeOpenAIServer, **overrides: Any) -> EmbedderConfig:
    settings: dict[str, Any] = {
        "provider": "openai",
        "model": "text-embedding-3-small",
        "dimension": DIMENSION,
        "base_url": server.base_url,
        "api_key": API_KEY,
        "timeout_s": 2.0,
        "max_retries": 3,
        "backoff_initial_s": 0.005,
        "backoff_max_s": 0.02,
        "circuit_failure_threshold": 20,
        "circuit_reset_s": 0.2,
    }
    settings.update(overrides)
    return EmbedderConfig(**settings)


@pytest.fixture
async def make_embedder(server: FakeOpenAIServer) -> AsyncIterator[MakeEmbedder]:
    created: list[OpenAIEmbedder] = []

    def make(
        *, max_concurrency: int = 4, limits: RequestLimits | None = None, **overrides: Any
    ) -> OpenAIEmbedder:
        extra: dict[str, Any] = {} if limits is None else {"limits": limits}
        embedder = OpenAIEmbedder(config_for(server, **overrides), max_concurrency=max_concurrency, **extra)
        created.append(embedder)
        return embedder

    yield make
    for embedder in created:
        await embedder.aclose()


def unit(vector: Vector) -> Vector:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def state_of(embedder: OpenAIEmbedder) -> CircuitState:
    # A call, not an attribute chain, so type checkers do not carry a narrowed state across awaits.
    return embedder.circuit.state


# -- results ---------------------------------------------------------------------------------


async def test_returns_unit_float32_vectors_in_input_order(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.scale = 3.0  # the client must normalise
    server.reverse_order = True  # the client must sort by index
    embedder = make_embedder()
    texts = ["deploy the billing service", "fix the login page", "rotate the database password"]

    vectors = await embedder.embed(texts)

    assert isinstance(embedder, Embedder)
    assert embedder.model_name == "text-embedding-3-small"
    assert embedder.dimension == DIMENSION
    assert len(vectors) == 3
    for text, vector in zip(texts, vectors, strict=True):
        assert vector.dtype == np.float32
        assert vector.shape == (DIMENSION,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(vector, unit(server.vector_for(text, DIMENSION)), atol=1e-6)
    (request,) = server.requests
    assert request.path == "/v1/embeddings"
    assert request.model == "text-embedding-3-small"
    assert request.dimensions == DIMENSION  # differs from the model's 1536, so it is sent
    assert request.authorization == f"Bearer {API_KEY}"


async def test_dimensions_parameter_is_omitted_at_the_model_default(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder(dimension=None)
    (vector,) = await embedder.embed(["one text"])
    assert embedder.dimension == 1536
    assert vector.shape == (1536,)
    assert server.requests[0].dimensions is None


async def test_blank_texts_are_not_sent_and_get_a_fixed_unit_vector(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder()
    vectors = await embedder.embed(["", "real text", "   "])
    expected_blank = np.zeros(DIMENSION, dtype=np.float32)
    expected_blank[0] = 1.0
    np.testing.assert_array_equal(vectors[0], expected_blank)
    np.testing.assert_array_equal(vectors[2], expected_blank)
    assert [request.inputs for request in server.requests] == [("real text",)]
    assert await embedder.embed([]) == []
    (only_blank,) = await embedder.embed(["  "])
    np.testing.assert_array_equal(only_blank, expected_blank)
    assert len(server.requests) == 1


# -- batching --------------------------------------------------------------------------------


async def test_batches_split_at_max_batch_inputs(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder(max_batch_inputs=4)
    texts = [f"task {i} needs doing" for i in range(10)]

    vectors = await embedder.embed(texts)

    sent = {request.inputs for request in server.requests}
    assert sent == {tuple(texts[0:4]), tuple(texts[4:8]), tuple(texts[8:10])}
    for text, vector in zip(texts, vectors, strict=True):
        np.testing.assert_allclose(vector, server.vector_for(text, DIMENSION), atol=1e-6)
    assert embedder.requests_sent == 3
    assert embedder.texts_embedded == 10


async def test_batches_split_at_the_token_budget(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder(max_batch_tokens=10)
    texts = ["x" * 20, "y" * 20, "z" * 20]  # 5 estimated tokens each

    await embedder.embed(texts)

    assert sorted(len(request.inputs) for request in server.requests) == [1, 2]


async def test_inputs_over_the_per_input_limit_are_truncated_to_their_beginning(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    limits = RequestLimits(max_inputs=2048, max_tokens=300_000, max_tokens_per_input=10)
    embedder = make_embedder(limits=limits)
    long_text = "start of a long description " + "more words " * 100

    await embedder.embed([long_text, "short"])

    (request,) = server.requests
    assert long_text.startswith(request.inputs[0])
    assert embedder.count_tokens(request.inputs[0]) <= 10
    assert request.inputs[1] == "short"
    assert embedder.inputs_truncated == 1


async def test_concurrent_requests_are_bounded(server: FakeOpenAIServer, make_embedder: MakeEmbedder) -> None:
    server.latency_s = 0.05
    embedder = make_embedder(max_batch_inputs=1, max_concurrency=2)

    await embedder.embed([f"text {i}" for i in range(8)])

    assert len(server.requests) == 8
    assert server.max_in_flight == 2


# -- accounting ------------------------------------------------------------------------------


async def test_tokens_are_counted_from_usage_or_estimated(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    embedder = make_embedder()
    await embedder.embed(["a" * 40, "b" * 8])  # the fake reports ceil(len / 4) per input
    assert embedder.tokens_used == 12

    server.include_usage = False
    await embedder.embed(["c" * 400])
    assert embedder.tokens_used == 12 + embedder.count_tokens("c" * 400)


# -- retries and failures --------------------------------------------------------------------


async def test_retries_429_and_500_then_succeeds(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.RATE_LIMIT, retry_after_s=0.01)
    server.inject(Fault.SERVER_ERROR)
    embedder = make_embedder()

    (vector,) = await embedder.embed(["eventually embedded"])

    np.testing.assert_allclose(vector, server.vector_for("eventually embedded", DIMENSION), atol=1e-6)
    assert [request.status for request in server.requests] == [429, 500, 200]
    assert (embedder.requests_sent, embedder.requests_failed, embedder.retries_made) == (3, 2, 2)
    assert state_of(embedder) is CircuitState.CLOSED


async def test_retry_after_is_honoured(server: FakeOpenAIServer, make_embedder: MakeEmbedder) -> None:
    server.inject(Fault.RATE_LIMIT, retry_after_s=0.3)
    embedder = make_embedder(backoff_max_s=1.0)

    started = time.perf_counter()
    await embedder.embed(["wait for me"])

    assert time.perf_counter() - started >= 0.3
    assert len(server.requests) == 2


async def test_timeouts_exhaust_retries_then_raise_embedding_unavailable(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.HANG, count=2)
    embedder = make_embedder(timeout_s=0.3, max_retries=1)

    started = time.perf_counter()
    with pytest.raises(EmbeddingUnavailable) as raised:
        await embedder.embed(["never answered"])

    assert time.perf_counter() - started < 2.0
    assert raised.value.retriable
    assert "timed out" in str(raised.value)
    assert "base_url" in str(raised.value)  # the hint says what to check
    assert len(server.requests) == 2
    assert embedder.requests_failed == 2


async def test_wrong_dimension_is_rejected_without_retry(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.WRONG_DIMENSION)
    embedder = make_embedder()

    with pytest.raises(WrongDimension) as raised:
        await embedder.embed(["some text"])

    assert not raised.value.retriable
    assert str(DIMENSION + 1) in str(raised.value)
    assert len(server.requests) == 1


async def test_an_authentication_failure_is_not_retried_and_hints_at_the_key(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.UNAUTHORIZED)
    embedder = make_embedder()

    with pytest.raises(EmbeddingUnavailable) as raised:
        await embedder.embed(["some text"])

    assert "api_key" in str(raised.value)
    assert API_KEY not in str(raised.value)
    assert len(server.requests) == 1


async def test_one_failed_batch_fails_the_call_with_its_own_error(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.WRONG_DIMENSION)
    embedder = make_embedder(max_batch_inputs=1, max_concurrency=1)

    with pytest.raises(WrongDimension):
        await embedder.embed(["first", "second", "third"])


async def test_the_api_key_is_never_logged(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder, caplog: pytest.LogCaptureFixture
) -> None:
    server.inject(Fault.SERVER_ERROR, count=2)
    server.inject(Fault.HANG)
    embedder = make_embedder(timeout_s=0.3)

    with caplog.at_level(logging.DEBUG):
        await embedder.embed(["logged failure"])

    assert any("retry" in record.getMessage() for record in caplog.records)
    assert all(API_KEY not in record.getMessage() for record in caplog.records)
    assert API_KEY not in caplog.text
    assert API_KEY not in repr(config_for(server))


# -- circuit breaker -------------------------------------------------------------------------


async def test_breaker_opens_after_the_threshold_fails_fast_then_recovers(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.SERVER_ERROR, count=100)
    embedder = make_embedder(circuit_failure_threshold=2, max_retries=5, circuit_reset_s=0.2)

    with pytest.raises(EmbeddingUnavailable, match="circuit is open"):
        await embedder.embed(["first call"])
    assert len(server.requests) == 2  # the third attempt was refused by the open circuit
    assert state_of(embedder) is CircuitState.OPEN

    started = time.perf_counter()
    with pytest.raises(EmbeddingUnavailable, match="circuit is open"):
        await embedder.embed(["second call"])
    assert time.perf_counter() - started < 0.05
    assert len(server.requests) == 2  # failed fast: nothing reached the server

    server.clear_faults()
    await asyncio.sleep(0.25)
    (vector,) = await embedder.embed(["after recovery"])  # the half-open trial succeeds
    assert vector.shape == (DIMENSION,)
    assert state_of(embedder) is CircuitState.CLOSED
    assert len(server.requests) == 3


async def test_a_failed_trial_reopens_the_circuit(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.SERVER_ERROR, count=3)
    embedder = make_embedder(circuit_failure_threshold=2, max_retries=0, circuit_reset_s=0.1)
    for _ in range(2):
        with pytest.raises(EmbeddingUnavailable):
            await embedder.embed(["failing"])
    assert state_of(embedder) is CircuitState.OPEN

    await asyncio.sleep(0.15)
    with pytest.raises(EmbeddingUnavailable):
        await embedder.embed(["trial"])  # the trial reaches the server and fails
    assert len(server.requests) == 3
    assert state_of(embedder) is CircuitState.OPEN
    assert embedder.circuit.times_opened == 2


async def test_a_multi_batch_call_after_an_outage_closes_the_circuit_through_one_trial(
    server: FakeOpenAIServer, make_embedder: MakeEmbedder
) -> None:
    server.inject(Fault.SERVER_ERROR)
    embedder = make_embedder(
        circuit_failure_threshold=1, max_retries=0, circuit_reset_s=0.1, max_batch_inputs=1
    )
    with pytest.raises(EmbeddingUnavailable):
        await embedder.embed(["outage"])
    await asyncio.sleep(0.15)
    server.latency_s = 0.05  # keep the trial in flight while the other batches arrive

    vectors = await embedder.embed(["one", "two", "three", "four"])

    assert len(vectors) == 4
    assert state_of(embedder) is CircuitState.CLOSED
    assert len(server.requests) == 5


# -- configuration and the factory ------------------------------------------------------------


async def test_an_unknown_model_needs_an_explicit_dimension(server: FakeOpenAIServer) -> None:
    with pytest.raises(ConfigurationError, match="dimension"):
        OpenAIEmbedder(config_for(server, model="my-local-model", dimension=None))
    server.default_dimension = 768
    embedder = OpenAIEmbedder(config_for(server, model="my-local-model", dimension=768))
    try:
        (vector,) = await embedder.embed(["any text"])
    finally:
        await embedder.aclose()
    assert embedder.dimension == vector.shape[0] == 768
    assert server.requests[0].dimensions is None  # unknown models are not asked to shorten


def test_a_model_without_shortening_cannot_be_asked_for_fewer_dimensions(server: FakeOpenAIServer) -> None:
    with pytest.raises(ConfigurationError):
        OpenAIEmbedder(config_for(server, model="text-embedding-ada-002", dimension=256))
    with pytest.raises(ConfigurationError):
        OpenAIEmbedder(config_for(server, model="text-embedding-3-small", dimension=4096))


async def test_factory_builds_openai_and_rejects_unknown_providers(server: FakeOpenAIServer) -> None:
    built = create_embedder(config_for(server))
    assert isinstance(built, OpenAIEmbedder)
    await built.aclose()
    with pytest.raises(ConfigurationError, match="hash, local, openai"):
        create_embedder(config_for(server, provider=cast(Any, "nope")))
