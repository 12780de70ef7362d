"""Embedding providers behind one interface, and the factory that picks one from settings."""

from __future__ import annotations

from processors.embedders.base import Embedder, EmbedderConfig, Vector
from processors.embedders.batching import OPENAI_LIMITS, RequestLimits, estimate_tokens, plan_batches
from processors.embedders.circuit import CircuitBreaker, CircuitState
from processors.embedders.hashing import HashingEmbedder
from processors.embedders.openai_compat import OpenAIEmbedder
from processors.embedders.providers import LOCAL_PROVIDER_NAMES, PROVIDER_NAMES, build_embedder

__all__ = [
    "LOCAL_PROVIDER_NAMES",
    "OPENAI_LIMITS",
    "PROVIDER_NAMES",
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
    """Build the configured provider (processors/embedders/providers.py lists them)."""
    return build_embedder(config)
