from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from processors.embedders import EmbedderConfig, HashingEmbedder, create_embedder
from processors.embedders.base import Embedder
from processors.errors import ConfigurationError


@pytest.fixture(scope="module")
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


def cosine(embedder: HashingEmbedder, left: str, right: str) -> float:
    first, second = embedder.embed_sync([left, right])
    return float(first @ second)


def test_defaults_name_the_model_after_the_dimension() -> None:
    assert HashingEmbedder().dimension == 384
    assert HashingEmbedder().model_name == "hash-384"
    assert HashingEmbedder(64).model_name == "hash-64"


def test_satisfies_the_embedder_protocol(embedder: HashingEmbedder) -> None:
    assert isinstance(embedder, Embedder)


def test_rejects_a_useless_dimension() -> None:
    with pytest.raises(ConfigurationError):
        HashingEmbedder(1)


def test_vectors_are_unit_length_float32_of_the_dimension(embedder: HashingEmbedder) -> None:
    vectors = embedder.embed_sync(["Deploy the billing service", "a", "x " * 500])
    for vector in vectors:
        assert vector.dtype == np.float32
        assert vector.shape == (384,)
        assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("text", ["", "   ", "\n\t", "?!...", "—"])
def test_text_without_words_gets_a_fixed_unit_vector(embedder: HashingEmbedder, text: str) -> None:
    (vector,) = embedder.embed_sync([text])
    assert np.all(np.isfinite(vector))
    expected = np.zeros(384, dtype=np.float32)
    expected[0] = 1.0
    np.testing.assert_array_equal(vector, expected)


def test_texts_sharing_most_words_are_close(embedder: HashingEmbedder) -> None:
    assert (
        cosine(embedder, "Fix the login bug in the auth service", "fix login bug in auth service today") > 0.6
    )
    assert (
        cosine(
            embedder,
            "Refactor the payment gateway retry logic",
            "Write unit tests for the payment gateway retry logic",
        )
        > 0.55
    )


def test_unrelated_texts_are_far_apart(embedder: HashingEmbedder) -> None:
    assert (
        abs(cosine(embedder, "Refactor the payment gateway retry logic", "Plan the team offsite in Lisbon"))
        < 0.25
    )
    assert abs(cosine(embedder, "authentication", "database")) < 0.2


def test_a_typo_keeps_a_word_close_through_character_trigrams(embedder: HashingEmbedder) -> None:
    with_typo = cosine(embedder, "authentication", "authentcation")
    unrelated = cosine(embedder, "authentication", "spreadsheet")
    assert with_typo > 0.3
    assert with_typo > unrelated + 0.25


def test_case_and_punctuation_do_not_matter(embedder: HashingEmbedder) -> None:
    assert cosine(embedder, "Hello, World!", "hello world") == pytest.approx(1.0, abs=1e-6)


def test_word_order_matters_a_little_through_bigrams(embedder: HashingEmbedder) -> None:
    similarity = cosine(embedder, "dog bites man", "man bites dog")
    assert 0.6 < similarity < 0.99


def test_unicode_words_are_tokenised(embedder: HashingEmbedder) -> None:
    assert cosine(embedder, "Привет мир", "привет, мир!") == pytest.approx(1.0, abs=1e-6)
    assert cosine(embedder, "Café résumé", "café RÉSUMÉ") == pytest.approx(1.0, abs=1e-6)
    assert abs(cosine(embedder, "Привет мир", "hello world")) < 0.2


def test_repetition_is_damped_sublinearly(embedder: HashingEmbedder) -> None:
    # With raw counts, five "deploy"s would swamp the shared words; 1 + ln(5) does not.
    repeated = cosine(embedder, "deploy deploy deploy deploy deploy fix database", "fix database")
    once = cosine(embedder, "deploy fix database", "fix database")
    assert 0.35 < repeated < once


def test_vectors_are_stable_across_processes_and_hash_seeds(embedder: HashingEmbedder) -> None:
    script = (
        "import sys; from processors.embedders.hashing import HashingEmbedder;"
        "vector = HashingEmbedder().embed_sync(['stable hashing check'])[0];"
        "sys.stdout.write(vector.tobytes().hex())"
    )
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}
    output = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=environment
    ).stdout
    (here,) = embedder.embed_sync(["stable hashing check"])
    assert bytes.fromhex(output) == here.tobytes()


def test_batch_results_match_single_results_across_chunks() -> None:
    embedder = HashingEmbedder(32)
    texts = [f"task number {i} about topic {i % 7}" for i in range(2100)]  # spans three chunks
    batched = embedder.embed_sync(texts)
    for index in (0, 1023, 1024, 2047, 2099):
        np.testing.assert_array_equal(batched[index], embedder.embed_sync([texts[index]])[0])


def test_a_tiny_cache_gives_the_same_vectors() -> None:
    texts = [f"word{i} other{i * 3} shared tail" for i in range(50)]
    reference = HashingEmbedder(64).embed_sync(texts)
    with_evictions = HashingEmbedder(64, cache_size=5).embed_sync(texts)
    for expected, actual in zip(reference, with_evictions, strict=True):
        np.testing.assert_array_equal(expected, actual)


async def test_async_embed_matches_sync_and_keeps_order(embedder: HashingEmbedder) -> None:
    texts = ["first task", "second task", ""]
    vectors = await embedder.embed(texts)
    assert len(vectors) == 3
    for vector, expected in zip(vectors, embedder.embed_sync(texts), strict=True):
        np.testing.assert_array_equal(vector, expected)
    assert await embedder.embed([]) == []
    await embedder.aclose()


def test_count_tokens_is_a_positive_estimate(embedder: HashingEmbedder) -> None:
    assert embedder.count_tokens("") == 1
    assert embedder.count_tokens("a" * 400) == 100


def test_factory_builds_the_hash_provider_with_the_configured_dimension() -> None:
    built = create_embedder(EmbedderConfig(provider="hash", dimension=128))
    assert isinstance(built, HashingEmbedder)
    assert built.model_name == "hash-128"
    assert create_embedder(EmbedderConfig()).dimension == 384
