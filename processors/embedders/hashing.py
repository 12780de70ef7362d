"""Deterministic feature-hashing embedder: no model, no network, stable across processes.

Features per text: lower-cased word unigrams, word bigrams, and character trigrams of each word
(so a typo still shares most of a word's features). Words and trigrams are hashed with blake2b
(Python's hash() is randomised per process); a bigram's hash is mixed from its two word hashes.
The top hash bit gives the feature's sign, the rest its index. Counts are damped with 1 + ln(tf),
and each vector is L2-normalised float32.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np

from processors.embedders.base import Vector
from processors.embedders.batching import estimate_tokens
from processors.errors import ConfigurationError

DEFAULT_DIMENSION = 384

_WORD = re.compile(r"\w+")  # str patterns are Unicode-aware: accents, Cyrillic, CJK all count
_BIGRAM_WEIGHT = 0.7  # below unigrams so reworded or reordered text stays similar
_CHAR_NGRAM_NORM = 1.0  # a word's trigrams together weigh as much as the word: typos stay close
_CHAR_NGRAM_SIZE = 3
_HASH_PERSON = b"tasksage-hash"  # domain separation: these hashes are ours alone
_CHUNK_TEXTS = 1024  # bounds the dense scratch matrix to ~3 MB at 384-d

# splitmix64 constants: a cheap, well-tested integer mixer for the bigram hashes.
_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB

# A word's 64-bit hash plus its unigram and trigram features as parallel index/weight lists.
_WordFeatures = tuple[int, list[int], list[float]]


class HashingEmbedder:
    """Embeds texts by signed feature hashing; the test and benchmark default."""

    def __init__(self, dimension: int = DEFAULT_DIMENSION, *, cache_size: int = 200_000) -> None:
        if dimension < 2:
            raise ConfigurationError(f"hash embedder dimension must be at least 2, got {dimension}")
        self._dimension = dimension
        self._cache_size = cache_size
        # Words repeat heavily across texts, so each distinct word is hashed once. The cache is
        # cleared wholesale when full: bounded memory without LRU bookkeeping on the hot path.
        self._word_cache: dict[str, _WordFeatures] = {}

    @property
    def model_name(self) -> str:
        return f"hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        # Pure CPU at tens of microseconds per text: cheaper inline than a hop to a thread.
        return self.embed_sync(texts)

    def embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        """Synchronous form of `embed`, for callers outside an event loop (the fake server, tools)."""
        vectors: list[Vector] = []
        for start in range(0, len(texts), _CHUNK_TEXTS):
            vectors.extend(self._embed_chunk(texts[start : start + _CHUNK_TEXTS]))
        return vectors

    def count_tokens(self, text: str) -> int:
        return estimate_tokens(text)

    async def aclose(self) -> None:
        return None

    def _embed_chunk(self, texts: Sequence[str]) -> list[Vector]:
        indices: list[int] = []
        weights: list[float] = []
        features_per_text: list[int] = []
        for text in texts:
            before = len(indices)
            self._add_features(text, indices, weights)
            features_per_text.append(len(indices) - before)
        # One bincount for the whole chunk: row r's features land at r * dimension + index.
        rows = np.repeat(np.arange(len(texts), dtype=np.int64), features_per_text)
        flat_positions = rows * self._dimension + np.asarray(indices, dtype=np.int64)
        summed = np.bincount(flat_positions, weights=weights, minlength=len(texts) * self._dimension)
        matrix = np.asarray(summed, dtype=np.float64).reshape(len(texts), self._dimension)
        norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix))
        featureless = norms == 0.0
        # No features (empty or punctuation-only text): a fixed unit vector, never NaN.
        matrix[featureless, 0] = 1.0
        norms[featureless] = 1.0
        matrix /= norms[:, np.newaxis]
        return list(matrix.astype(np.float32))

    def _add_features(self, text: str, indices: list[int], weights: list[float]) -> None:
        words = _WORD.findall(text.lower())
        if not words:
            return
        word_keys: dict[str, int] = {}
        for word, count in Counter(words).items():
            word_key, feature_indices, feature_weights = self._word_features(word)
            word_keys[word] = word_key
            indices.extend(feature_indices)
            if count == 1:
                weights.extend(feature_weights)
            else:
                damping = 1.0 + math.log(count)  # sublinear tf: repetition adds less and less
                weights.extend([weight * damping for weight in feature_weights])
        if len(words) < 2:
            return
        dimension = self._dimension
        keys = [word_keys[word] for word in words]
        for (left, right), count in Counter(itertools.pairwise(keys)).items():
            mixed = (left * _GOLDEN + right) & _MASK64  # order matters: "a b" differs from "b a"
            mixed ^= mixed >> 30
            mixed = (mixed * _MIX1) & _MASK64
            mixed ^= mixed >> 27
            mixed = (mixed * _MIX2) & _MASK64
            mixed ^= mixed >> 31
            weight = _BIGRAM_WEIGHT if mixed >> 63 else -_BIGRAM_WEIGHT
            indices.append(mixed % dimension)
            weights.append(weight if count == 1 else weight * (1.0 + math.log(count)))

    def _word_features(self, word: str) -> _WordFeatures:
        cached = self._word_cache.get(word)
        if cached is not None:
            return cached
        word_key = _stable_hash(f"w:{word}")
        indices = [word_key % self._dimension]
        weights = [_sign(word_key)]
        padded = f"<{word}>"
        trigram_count = max(1, len(padded) - _CHAR_NGRAM_SIZE + 1)
        trigram_weight = _CHAR_NGRAM_NORM / math.sqrt(trigram_count)
        for start in range(trigram_count):
            trigram_key = _stable_hash(f"c:{padded[start : start + _CHAR_NGRAM_SIZE]}")
            indices.append(trigram_key % self._dimension)
            weights.append(_sign(trigram_key) * trigram_weight)
        features = (word_key, indices, weights)
        if len(self._word_cache) >= self._cache_size:
            self._word_cache.clear()
        self._word_cache[word] = features
        return features


def _stable_hash(feature: str) -> int:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8, person=_HASH_PERSON).digest()
    return int.from_bytes(digest, "little")


def _sign(key: int) -> float:
    return 1.0 if key >> 63 else -1.0
