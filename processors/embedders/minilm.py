"""The all-MiniLM-L6-v2 encoder's forward pass in numpy float32: packing sentences into
chunks, the six BERT layers, mean pooling. Loading, tokenizing and threading are local.py's.

Every per-token operation is one large matmul or ufunc over a whole chunk of tokens; only
attention is per sentence. Weights are folded at load time (query pre-scaled, GELU's 0.5 moved
into the next matmul) so the hot loop does less."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from processors.errors import ConfigurationError

DIMENSION = 384
MAX_SEQ_LENGTH = 256  # sentence-transformers' max_seq_length for this model (tokenizer.json says 128)
# Tokens per forward chunk: large enough for efficient matmuls, small enough that the
# per-chunk buffers (about 8 KB per token) stay in cache-friendly tens of MB.
_CHUNK_TOKENS = 2048
_GELU_ROWS = 128  # rows per GELU block: its three scratch arrays fit in one core's L2
INSTALL_HINT = "install tasksage with the 'local' extra"

Array = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Sentences packed end to end: token ids and positions, plus each sentence's start."""

    ids: IntArray
    positions: IntArray
    starts: IntArray
    lengths: IntArray


def pack_sentences(token_ids: list[list[int]], workers: int) -> Iterator[Chunk]:
    """Split consecutive sentences into chunks: at most _CHUNK_TOKENS, and enough for every worker."""
    lengths = np.array([len(ids) for ids in token_ids], dtype=np.int64)
    budget = min(_CHUNK_TOKENS, max(MAX_SEQ_LENGTH, math.ceil(int(lengths.sum()) / workers)))
    first, tokens = 0, 0
    for index, length in enumerate(lengths.tolist()):
        if tokens and tokens + length > budget:
            yield _pack(token_ids[first:index], lengths[first:index])
            first, tokens = index, 0
        tokens += length
    yield _pack(token_ids[first:], lengths[first:])


def _pack(token_ids: list[list[int]], lengths: IntArray) -> Chunk:
    total = int(lengths.sum())
    starts = np.zeros(len(lengths), dtype=np.int64)
    np.cumsum(lengths[:-1], out=starts[1:])
    ids = np.fromiter(itertools.chain.from_iterable(token_ids), dtype=np.int64, count=total)
    positions = np.arange(total, dtype=np.int64) - np.repeat(starts, lengths)
    return Chunk(ids=ids, positions=positions, starts=starts, lengths=lengths)


@dataclass(frozen=True, slots=True)
class _Layer:
    """One encoder layer; matrices are stored (in, out) so activations multiply on the left."""

    qkv: Array  # query|key|value side by side; the query part is pre-scaled by 1/sqrt(head_dim)
    qkv_bias: Array
    attn_out: Array
    attn_out_bias: Array
    attn_norm: tuple[Array, Array]
    ffn_in: Array
    ffn_in_bias: Array
    ffn_out: Array  # pre-scaled by 0.5: _gelu_times_two_ skips that multiplication
    ffn_out_bias: Array
    ffn_norm: tuple[Array, Array]


class MiniLM:
    """BERT encoder + mean pooling + L2 normalisation, as sentence-transformers runs it."""

    def __init__(
        self,
        embeddings: tuple[Array, Array, Array],
        embed_norm: tuple[Array, Array],
        layers: list[_Layer],
        heads: int,
        eps: float,
    ) -> None:
        self._words, self._positions, self._token_type = embeddings
        self._embed_norm = embed_norm
        self._layers = layers
        self._heads = heads
        self._eps = np.float32(eps)

    @classmethod
    def load(cls, directory: Path) -> MiniLM:
        try:
            from safetensors.numpy import load_file
        except ImportError as exc:
            raise ConfigurationError("safetensors is not installed", hint=INSTALL_HINT) from exc

        config = json.loads((directory / "config.json").read_text())
        if config.get("hidden_act") != "gelu" or config.get("hidden_size") != DIMENSION:
            raise ConfigurationError(f"{directory} is not a {DIMENSION}-d GELU BERT model")
        weights: dict[str, Any] = load_file(str(directory / "model.safetensors"))
        heads = int(config["num_attention_heads"])
        query_scale = 1.0 / math.sqrt(DIMENSION // heads)

        def tensor(name: str) -> Array:
            return np.ascontiguousarray(weights[name], dtype=np.float32)

        def linear(name: str, factor: float = 1.0) -> tuple[Array, Array]:
            scale = np.float32(factor)
            return np.ascontiguousarray(tensor(f"{name}.weight").T * scale), tensor(f"{name}.bias") * scale

        def norm(name: str) -> tuple[Array, Array]:
            return tensor(f"{name}.weight"), tensor(f"{name}.bias")

        layers = []
        for index in range(int(config["num_hidden_layers"])):
            prefix = f"encoder.layer.{index}"
            parts = [
                linear(f"{prefix}.attention.self.query", query_scale),
                linear(f"{prefix}.attention.self.key"),
                linear(f"{prefix}.attention.self.value"),
            ]
            attn_out, attn_out_bias = linear(f"{prefix}.attention.output.dense")
            ffn_in, ffn_in_bias = linear(f"{prefix}.intermediate.dense")
            ffn_out = np.ascontiguousarray(tensor(f"{prefix}.output.dense.weight").T * np.float32(0.5))
            layers.append(
                _Layer(
                    qkv=np.ascontiguousarray(np.concatenate([m for m, _ in parts], axis=1)),
                    qkv_bias=np.concatenate([b for _, b in parts]),
                    attn_out=attn_out,
                    attn_out_bias=attn_out_bias,
                    attn_norm=norm(f"{prefix}.attention.output.LayerNorm"),
                    ffn_in=ffn_in,
                    ffn_in_bias=ffn_in_bias,
                    ffn_out=ffn_out,
                    ffn_out_bias=tensor(f"{prefix}.output.dense.bias"),
                    ffn_norm=norm(f"{prefix}.output.LayerNorm"),
                )
            )
        embeddings = (
            tensor("embeddings.word_embeddings.weight"),
            tensor("embeddings.position_embeddings.weight"),
            tensor("embeddings.token_type_embeddings.weight")[0],  # single-segment input: type 0
        )
        return cls(embeddings, norm("embeddings.LayerNorm"), layers, heads, float(config["layer_norm_eps"]))

    def embed_chunk(self, chunk: Chunk) -> Array:
        """Unit vectors, one row per sentence of the chunk."""
        hidden = self._words[chunk.ids]
        hidden += self._positions[chunk.positions]
        hidden += self._token_type
        self._layer_norm_(hidden, self._embed_norm)
        tokens = len(chunk.ids)
        qkv = np.empty((tokens, 3 * DIMENSION), dtype=np.float32)
        context = np.empty((tokens, DIMENSION), dtype=np.float32)
        inner = np.empty((tokens, self._layers[0].ffn_in.shape[1]), dtype=np.float32)
        scratch = np.empty((3, _GELU_ROWS, inner.shape[1]), dtype=np.float32)
        for layer in self._layers:
            np.matmul(hidden, layer.qkv, out=qkv)
            qkv += layer.qkv_bias
            for start, length in zip(chunk.starts.tolist(), chunk.lengths.tolist(), strict=True):
                rows = slice(start, start + length)
                context[rows] = self._attention(qkv[rows])
            attended = context @ layer.attn_out
            attended += layer.attn_out_bias
            attended += hidden
            self._layer_norm_(attended, layer.attn_norm)
            np.matmul(attended, layer.ffn_in, out=inner)
            inner += layer.ffn_in_bias
            for row in range(0, tokens, _GELU_ROWS):
                block = inner[row : row + _GELU_ROWS]
                _gelu_times_two_(block, *scratch[:, : len(block)])
            hidden = inner @ layer.ffn_out
            hidden += layer.ffn_out_bias
            hidden += attended
            self._layer_norm_(hidden, layer.ffn_norm)
        pooled: Array = np.add.reduceat(hidden, chunk.starts, axis=0)
        pooled /= chunk.lengths[:, None].astype(np.float32)
        pooled /= np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), np.float32(1e-12))
        return pooled

    def _attention(self, qkv: Array) -> Array:
        """Multi-head self-attention of one sentence; qkv is (tokens, 3 * hidden)."""
        length = len(qkv)
        split = qkv.reshape(length, 3, self._heads, -1)
        queries = split[:, 0].transpose(1, 2, 0)  # (head, dim, query)
        keys = split[:, 1].transpose(1, 0, 2)  # (head, key, dim)
        values = split[:, 2].transpose(1, 0, 2)  # (head, key, dim)
        # Scores laid out (head, key, query): the softmax reductions then run across rows,
        # which numpy vectorises far better than along short rows.
        scores: Array = keys @ queries
        scores -= scores.max(axis=1, keepdims=True)
        np.exp(scores, out=scores)
        # Normalise the (head, query, dim) result rather than the larger score matrix.
        context: Array = scores.transpose(0, 2, 1) @ values
        context /= scores.sum(axis=1)[:, :, None]
        return context.transpose(1, 0, 2).reshape(length, -1)

    def _layer_norm_(self, x: Array, params: tuple[Array, Array]) -> None:
        x -= x.mean(axis=1, keepdims=True)
        variance = np.einsum("ij,ij->i", x, x)  # sum of squares without a temporary
        variance /= np.float32(x.shape[1])
        variance += self._eps
        x /= np.sqrt(variance)[:, None]
        x *= params[0]
        x += params[1]


# Abramowitz & Stegun 7.1.26: erf(z) = 1 - t*P(t)*exp(-z^2), t = 1/(1 + p*z), z >= 0, with
# |error| <= 1.5e-7 -- float32 resolution, so this is the exact (erf) GELU BERT uses, not the
# tanh approximation. numpy has no erf ufunc and scipy's is scalar code, far slower.
_ERF_P = np.float32(0.3275911 / math.sqrt(2.0))  # folds z = |x| / sqrt(2) into t
_ERF_COEFFS = tuple(
    np.float32(c) for c in (1.061405429, -1.453152027, 1.421413741, -0.284496736, 0.254829592)
)


def _gelu_times_two_(x: Array, magnitude: Array, t: Array, tail: Array) -> None:
    """x <- 2 * gelu(x) in place; the 0.5 lives in the next layer's weights.

    2 * x * Phi(x) = x + |x| * erf(|x| / sqrt 2) = x + |x| - |x| * t * P(t) * exp(-x^2 / 2).
    """
    np.abs(x, out=magnitude)
    np.multiply(magnitude, _ERF_P, out=t)
    t += np.float32(1.0)
    np.reciprocal(t, out=t)
    np.multiply(t, _ERF_COEFFS[0], out=tail)
    for coefficient in _ERF_COEFFS[1:]:
        tail += coefficient
        tail *= t
    np.multiply(x, np.float32(-0.5), out=t)
    t *= x
    np.exp(t, out=t)
    tail *= t
    tail *= magnitude
    x += magnitude
    x -= tail
