"""The one interface every embedding provider implements."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float32]
ProviderName = Literal["hash", "local", "openai"]


@dataclass(frozen=True, slots=True)
class EmbedderConfig:
    """Everything a provider needs; built from the settings object at start-up."""

    provider: ProviderName = "hash"
    model: str | None = None  # provider default when None
    dimension: int | None = None  # provider default when None
    base_url: str | None = None  # openai: any OpenAI-compatible server
    # openai: taken from SecretStr at the edge; kept out of repr so logging a config cannot leak it
    api_key: str | None = field(default=None, repr=False)
    max_batch_inputs: int = 256
    max_batch_tokens: int = 100_000
    timeout_s: float = 30.0
    max_retries: int = 5
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 20.0
    circuit_failure_threshold: int = 5
    circuit_reset_s: float = 30.0


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into unit-length float32 vectors of a fixed dimension, in input order."""

    @property
    def model_name(self) -> str:
        """Stored with every vector, e.g. 'hash-384', 'all-MiniLM-L6-v2', 'text-embedding-3-small'."""
        ...

    @property
    def dimension(self) -> int: ...

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """Embed texts. Raises EmbeddingUnavailable (retriable) or WrongDimension (not retriable)."""
        ...

    def count_tokens(self, text: str) -> int:
        """Token estimate used for batching and cost accounting."""
        ...

    async def aclose(self) -> None: ...
