"""Embedding providers behind one interface, and the factory that picks one from settings."""

from __future__ import annotations

from typing import get_args

from processors.embedders.base import Embedder, EmbedderConfig, ProviderName, Vector
from processors.embedders.batching import OPENAI_LIMITS, RequestLimits, estimate_tokens, plan_batches
from processors.embedders.circuit import CircuitBreaker, CircuitState
from processors.embedders.hashing import DEFAULT_DIMENSION, HashingEmbedder
from processors.embedders.openai_compat import OpenAIEmbedder  # cheap: the SDK loads on first use
from processors.errors import ConfigurationError

__all__ = [
    "OPENAI_LIMITS",
    "CircuitBreaker",
    "CircuitState",
    "Embedder",
    "EmbedderConfig",
    "HashingEmbedder",
    "OpenAIEmbedder",
    "RequestLimits",
    "Vector",
    "create_embedder",
    "estimate_tokens",
    "plan_batches",
]


def create_embedder(config: EmbedderConfig) -> Embedder:
    """Build the configured provider. Heavy dependencies are imported only for the one chosen."""
    if config.provider == "hash":
        return HashingEmbedder(config.dimension or DEFAULT_DIMENSION)
    if config.provider == "openai":
        return OpenAIEmbedder(config)
    if config.provider == "local":
        # Imported here so the tokenizer and weights load only when this provider is chosen.
        from processors.embedders.local import LocalEmbedder

        return LocalEmbedder.from_config(config)
    valid = ", ".join(get_args(ProviderName))
    raise ConfigurationError(f"unknown embedding provider {config.provider!r}", hint=f"use one of: {valid}")
