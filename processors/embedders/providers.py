"""The embedding providers, listed once: the factory, the command-line choices and the cost
meter read this table. Adding a provider is an `Embedder` in its own module, an entry here and
its name in `ProviderName` (processors/embedders/base.py), which types the setting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import get_args

from processors.embedders.base import Embedder, EmbedderConfig, ProviderName
from processors.embedders.hashing import DEFAULT_DIMENSION, HashingEmbedder
from processors.embedders.openai_compat import OpenAIEmbedder  # cheap: the SDK loads on first use
from processors.errors import ConfigurationError


@dataclass(frozen=True, slots=True)
class Provider:
    name: ProviderName
    build: Callable[[EmbedderConfig], Embedder]
    # Runs on this machine: no per-token cost, no daily budget, usable offline (demo, bench).
    local: bool


def _hash(config: EmbedderConfig) -> Embedder:
    return HashingEmbedder(config.dimension or DEFAULT_DIMENSION)


def _local(config: EmbedderConfig) -> Embedder:
    # Imported here so the tokenizer and weights load only when this provider is chosen.
    from processors.embedders.local import LocalEmbedder

    return LocalEmbedder.from_config(config)


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider("hash", _hash, local=True),
        Provider("local", _local, local=True),
        Provider("openai", OpenAIEmbedder, local=False),
    )
}
PROVIDER_NAMES: tuple[str, ...] = get_args(ProviderName)
LOCAL_PROVIDER_NAMES: tuple[str, ...] = tuple(name for name, p in PROVIDERS.items() if p.local)


def build_embedder(config: EmbedderConfig) -> Embedder:
    """Build the configured provider. Heavy dependencies are imported only for the one chosen."""
    provider = PROVIDERS.get(config.provider)
    if provider is None:
        valid = ", ".join(PROVIDER_NAMES)
        raise ConfigurationError(
            f"unknown embedding provider {config.provider!r}", hint=f"use one of: {valid}"
        )
    return provider.build(config)
