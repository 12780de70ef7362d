"""Embeddings from OpenAI or any OpenAI-compatible server, with one retry policy and a breaker.

The SDK is imported inside the constructor so importing this module stays cheap, and the SDK's
own retries are disabled so that backoff, Retry-After and the circuit breaker live here alone.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from processors.embedders.base import EmbedderConfig, Vector
from processors.embedders.batching import (
    OPENAI_LIMITS,
    RequestLimits,
    estimate_tokens,
    plan_batches,
    truncate_to_tokens,
)
from processors.embedders.circuit import CircuitBreaker, CircuitState, Clock
from processors.errors import ConfigurationError, EmbeddingUnavailable, WrongDimension

if TYPE_CHECKING:
    import httpx2
    from openai import AsyncOpenAI, Omit
    from openai.types import CreateEmbeddingResponse

logger = logging.getLogger(__name__)

DEFAULT_MODEL = "text-embedding-3-small"
# Output sizes of OpenAI's models; any other model must be given a dimension explicitly.
NATIVE_DIMENSIONS = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
}
_SHORTENABLE_PREFIX = "text-embedding-3"  # only these accept the `dimensions` parameter
_RETRIABLE_STATUSES = frozenset({408, 409, 429})  # plus every 5xx
_HINTS = {
    401: "check the embedding api_key",
    403: "check the embedding api_key and that it may use this model",
    404: "check the embedding model name and base_url",
}
_DEFAULT_HINT = "check the embedding base_url, api_key, network access and the provider's status page"


@dataclass(frozen=True, slots=True)
class _Failure:
    """One failed request, classified: retry it here or give up at once."""

    reason: str
    retriable: bool
    retry_after_s: float | None = None
    hint: str = _DEFAULT_HINT


class OpenAIEmbedder:
    """Embedder over the OpenAI embeddings API (or a compatible server at `config.base_url`).

    Texts that are empty or whitespace are not sent (the API rejects empty input); they get the
    same fixed unit vector the hashing embedder uses. Inputs over the per-input token limit keep
    their leading part (see `truncate_to_tokens`) and are counted in `inputs_truncated`.
    """

    def __init__(
        self,
        config: EmbedderConfig,
        *,
        max_concurrency: int = 4,
        limits: RequestLimits = OPENAI_LIMITS,
        clock: Clock = time.monotonic,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        from openai import AsyncOpenAI, OpenAIError, omit

        model = config.model or DEFAULT_MODEL
        native_dimension = NATIVE_DIMENSIONS.get(model)
        dimension = config.dimension or native_dimension
        if dimension is None:
            raise ConfigurationError(
                f"embedding model {model!r} has no known output size",
                hint="set the embedding dimension to the size the server returns",
            )
        self._dimensions_param: int | Omit = omit
        if native_dimension is not None and dimension != native_dimension:
            if not model.startswith(_SHORTENABLE_PREFIX) or dimension > native_dimension:
                raise ConfigurationError(
                    f"embedding model {model!r} cannot return {dimension} dimensions",
                    hint=f"use its native {native_dimension}, or a text-embedding-3 model for a smaller size",
                )
            self._dimensions_param = dimension
        if max_concurrency < 1 or config.max_batch_inputs < 1 or config.max_batch_tokens < 1:
            raise ConfigurationError(
                "max_concurrency, max_batch_inputs and max_batch_tokens must be at least 1"
            )

        self._config = config
        self._model = model
        self._dimension = dimension
        self._limits = limits
        self._max_inputs = min(config.max_batch_inputs, limits.max_inputs)
        self._max_tokens = min(config.max_batch_tokens, limits.max_tokens)
        self._endpoint = _redact(config.base_url or "https://api.openai.com/v1")
        self._semaphore = asyncio.Semaphore(max_concurrency)
        self._random = random.Random()
        try:
            self._client: AsyncOpenAI = AsyncOpenAI(
                api_key=_api_key(config),
                base_url=config.base_url,
                timeout=config.timeout_s,
                max_retries=0,  # the retry policy lives in this class only
                http_client=http_client,
            )
        except OpenAIError as error:  # raised when no API key is configured anywhere
            raise ConfigurationError(
                f"cannot create the OpenAI client: {error}",
                hint="set the embedding api_key (or OPENAI_API_KEY), or a base_url for a keyless server",
            ) from None
        self._fallback_vector = np.zeros(dimension, dtype=np.float32)
        self._fallback_vector[0] = 1.0

        self.circuit = CircuitBreaker(config.circuit_failure_threshold, config.circuit_reset_s, clock=clock)
        self._trial_verdict = asyncio.Event()
        # Public counters for metrics and cost tracking; they only ever grow.
        self.tokens_used = 0
        self.texts_embedded = 0
        self.requests_sent = 0
        self.requests_failed = 0
        self.retries_made = 0
        self.inputs_truncated = 0

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def dimension(self) -> int:
        return self._dimension

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        await self._client.close()

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        vectors: list[Vector] = [self._fallback_vector] * len(texts)
        positions = [position for position, text in enumerate(texts) if text.strip()]
        inputs = [self._fit_input(texts[position]) for position in positions]
        plan = plan_batches(inputs, self.count_tokens, self._max_inputs, self._max_tokens)
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._embed_batch([inputs[i] for i in batch])) for batch in plan]
        except ExceptionGroup as failures:
            # One failed batch fails the call; report its own error, not the wrapper.
            raise failures.exceptions[0] from None
        for batch, task in zip(plan, tasks, strict=True):
            for index, vector in zip(batch, task.result(), strict=True):
                vectors[positions[index]] = vector
        self.texts_embedded += len(texts)
        return [vector.copy() if vector is self._fallback_vector else vector for vector in vectors]

    def _fit_input(self, text: str) -> str:
        fitted = truncate_to_tokens(text, self._limits.max_tokens_per_input, self.count_tokens)
        if fitted is not text:
            self.inputs_truncated += 1
        return fitted

    async def _embed_batch(self, inputs: list[str]) -> list[Vector]:
        # Held through backoff too: a throttled provider should not see more parallel calls.
        async with self._semaphore:
            return await self._request_with_retries(inputs)

    async def _request_with_retries(self, inputs: list[str]) -> list[Vector]:
        import openai

        attempts = self._config.max_retries + 1
        failure: _Failure | None = None
        for attempt in range(attempts):
            await self._enter_circuit(failure)
            self.requests_sent += 1
            try:
                response = await self._client.embeddings.create(
                    input=inputs, model=self._model, dimensions=self._dimensions_param
                )
            except (openai.APIError, ValueError) as error:
                # ValueError: the SDK's parser rejects a response without data.
                failure = _classify(error, self._config.timeout_s)
            except BaseException:
                self.circuit.release()  # cancelled mid-call: no verdict on the provider
                self._announce_verdict()
                raise
            else:
                self.circuit.record_success()
                self._announce_verdict()
                return self._vectors_from(response, inputs)

            self.requests_failed += 1
            self.circuit.record_failure()
            self._announce_verdict()
            if not failure.retriable:
                raise EmbeddingUnavailable(
                    f"embedding request to {self._endpoint} failed: {failure.reason}", hint=failure.hint
                )
            if attempt + 1 < attempts:
                delay = self._backoff_delay(attempt, failure.retry_after_s)
                self.retries_made += 1
                logger.warning(
                    "embedding request to %s failed (%s); retry %d/%d in %.2fs",
                    self._endpoint,
                    failure.reason,
                    attempt + 1,
                    attempts - 1,
                    delay,
                )
                await asyncio.sleep(delay)
        reason = failure.reason if failure else "no attempt made"
        raise EmbeddingUnavailable(
            f"embedding request to {self._endpoint} failed {attempts} times, last: {reason}",
            hint=_DEFAULT_HINT,
        )

    async def _enter_circuit(self, last_failure: _Failure | None) -> None:
        """Go ahead if the breaker allows; fail fast while it is open.

        While half-open, calls queue behind the single trial instead of failing: otherwise a
        multi-batch embed would fail its other batches at once, cancelling the trial with them,
        and the circuit could never close.
        """
        while not self.circuit.try_acquire():
            if self.circuit.state is not CircuitState.HALF_OPEN:
                last = f"; last failure: {last_failure.reason}" if last_failure else ""
                raise EmbeddingUnavailable(
                    f"embedding circuit is open for {self._endpoint} after repeated failures{last}; "
                    f"next trial in {self.circuit.seconds_until_trial():.1f}s",
                    hint=_DEFAULT_HINT,
                )
            await self._trial_verdict.wait()

    def _announce_verdict(self) -> None:
        # Wakes calls queued behind a half-open trial; a fresh event serves the next trial.
        self._trial_verdict.set()
        self._trial_verdict = asyncio.Event()

    def _backoff_delay(self, attempt: int, retry_after_s: float | None) -> float:
        """Full-jitter exponential backoff; a server's Retry-After is a floor. Both capped."""
        ceiling = min(self._config.backoff_max_s, self._config.backoff_initial_s * 2**attempt)
        delay = self._random.uniform(0.0, ceiling)
        if retry_after_s is not None:
            delay = max(delay, retry_after_s)
        return min(delay, self._config.backoff_max_s)

    def _vectors_from(self, response: CreateEmbeddingResponse, inputs: list[str]) -> list[Vector]:
        items = sorted(response.data, key=lambda item: item.index)
        if len(items) != len(inputs):
            raise EmbeddingUnavailable(
                f"embedding server returned {len(items)} vectors for {len(inputs)} inputs",
                hint="the server at base_url may not be OpenAI-compatible",
            )
        for item in items:
            if len(item.embedding) != self._dimension:
                raise WrongDimension(
                    f"{self._model} returned {len(item.embedding)} dimensions, expected {self._dimension}",
                    hint="set the embedding dimension to the model's output size",
                )
        matrix = np.asarray([item.embedding for item in items], dtype=np.float32)
        norms = np.linalg.norm(matrix, axis=1)
        degenerate = ~np.isfinite(norms) | (norms == 0.0)
        if degenerate.any():
            logger.warning("embedding server returned %d zero or non-finite vectors", int(degenerate.sum()))
            matrix[degenerate] = self._fallback_vector
            norms[degenerate] = 1.0
        matrix /= norms[:, np.newaxis]

        usage = getattr(response, "usage", None)  # compatible servers may omit it
        reported = getattr(usage, "total_tokens", None)
        self.tokens_used += (
            reported if isinstance(reported, int) and reported > 0 else sum(map(self.count_tokens, inputs))
        )
        return list(matrix)


def _classify(error: Exception, timeout_s: float) -> _Failure:
    import openai

    if isinstance(error, openai.APITimeoutError):
        return _Failure(f"timed out after {timeout_s:g}s", retriable=True)
    if isinstance(error, openai.APIConnectionError):
        return _Failure(f"connection failed: {error}", retriable=True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        reason = f"HTTP {status}: {error.message}"
        if status in _RETRIABLE_STATUSES or status >= 500:
            return _Failure(reason, retriable=True, retry_after_s=_retry_after_s(error.response.headers))
        # Other 4xx will not pass on retry within this call; the caller's policy decides later.
        return _Failure(reason, retriable=False, hint=_HINTS.get(status, _DEFAULT_HINT))
    return _Failure(f"malformed response: {error}", retriable=True)


def _retry_after_s(headers: httpx2.Headers) -> float | None:
    """Seconds the server asked us to wait: retry-after-ms, then retry-after (seconds or a date)."""
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return _non_negative(float(milliseconds) / 1000.0)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return _non_negative(float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _non_negative(when.timestamp() - time.time())


def _non_negative(seconds: float) -> float | None:
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _api_key(config: EmbedderConfig) -> str | None:
    if config.api_key:
        return config.api_key
    if config.base_url:
        # Self-hosted compatible servers often need no key, but the SDK insists on one
        # (it would otherwise read OPENAI_API_KEY, which may belong to another account).
        return "unused"
    return None  # the SDK reads OPENAI_API_KEY and raises if it is missing too


def _redact(url: str) -> str:
    """The URL without user:password, so it is safe in logs and error messages."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
