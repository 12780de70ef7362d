"""Online Bayesian logistic regression with a Gaussian (Laplace) posterior. Pure numpy, no I/O.

Model: P(y = 1 | x) = sigmoid(offset + w . x), prior w ~ Normal(prior_mean, prior_variance * I).
Each outcome is one assumed-density-filtering step: the posterior is kept Gaussian, N(mean, cov),
and one observation updates it by a rank-one Newton step

    h    = p (1 - p)                       p = sigmoid(offset + mean . x), before the outcome
    cov' = cov - h (cov x)(cov x)^T / (1 + h x^T cov x)      (Sherman-Morrison: precision + h x x^T)
    mean'= mean + cov' x (y - p)

which is the recursive least squares of a logistic model (Spiegelhalter & Lauritzen 1990; the
"Laplace approximation" of Chapelle & Li 2011). Why this shape:
- the update is a deterministic function of (state, x, offset, y), so replaying the same outcomes
  in the same order reproduces the state bit for bit (the inbox applies each outcome once);
- the prior precision is an explicit number of outcome-equivalents: a few hundred outcomes move
  the weights only as far as their evidence reaches, and a source that predicts nothing keeps its
  weight near the prior (zero); the step size shrinks by itself as the covariance does;
- cost per outcome is O(d^2) for d features, cheap for the few features of a stacker and for a
  low-dimensional projection of a task vector.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

Array = npt.NDArray[np.float64]
_CLAMP = 30.0  # logits beyond this carry no more information and overflow exp


def sigmoid(z: float) -> float:
    z = max(-_CLAMP, min(_CLAMP, z))
    return 1.0 / (1.0 + math.exp(-z))


def logit(p: float, eps: float = 1e-4) -> float:
    q = min(max(p, eps), 1.0 - eps)
    return math.log(q / (1.0 - q))


@dataclass(frozen=True, slots=True)
class LogisticState:
    """Gaussian posterior over the weights and the number of outcomes it has seen."""

    mean: Array
    cov: Array
    count: int = 0

    @property
    def dimension(self) -> int:
        return int(self.mean.shape[0])

    def to_bytes(self) -> bytes:
        """mean then cov as little-endian float64, for storage (see from_bytes)."""
        return np.concatenate([self.mean, self.cov.ravel()]).astype("<f8").tobytes()

    @staticmethod
    def from_bytes(data: bytes, dimension: int, count: int) -> LogisticState:
        values = np.frombuffer(data, dtype="<f8").astype(np.float64)
        if values.shape[0] != dimension + dimension * dimension:
            raise ValueError(f"stored state has {values.shape[0]} values, expected d={dimension}")
        return LogisticState(
            values[:dimension].copy(), values[dimension:].reshape(dimension, dimension).copy(), count
        )


def prior(dimension: int, variance: float | Array, mean: Array | None = None) -> LogisticState:
    """N(mean (default 0), diag(variance)): variance = 1 / prior precision, one for every weight
    or one per weight."""
    variances = np.broadcast_to(np.asarray(variance, dtype=np.float64), (dimension,))
    if not (np.all(variances > 0) and np.all(np.isfinite(variances))):
        raise ValueError("prior variance must be a positive finite number")
    m = np.zeros(dimension) if mean is None else np.asarray(mean, dtype=np.float64).copy()
    return LogisticState(m, np.diag(variances), 0)


def predict_logit(state: LogisticState, x: Array, offset: float = 0.0) -> float:
    """offset + mean . x (the posterior mean's logit; no moderation, so it stays a plain linear map)."""
    return offset + float(state.mean @ x)


def update(state: LogisticState, x: Array, y: bool, offset: float = 0.0) -> LogisticState:
    """The posterior after one outcome y at features x (a new state; the old one is untouched)."""
    p = sigmoid(predict_logit(state, x, offset))
    h = max(p * (1.0 - p), 1e-6)
    cx = state.cov @ x
    denom = 1.0 + h * float(x @ cx)
    cov = state.cov - np.outer(cx, cx) * (h / denom)
    mean = state.mean + (cov @ x) * ((1.0 if y else 0.0) - p)
    return LogisticState(mean, cov, state.count + 1)
