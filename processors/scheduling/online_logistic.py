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
- cost per outcome is O(d^2) for d features. For a 384-dimensional text model that is 150k
  numbers, so a batch of outcomes is applied to one working copy of the state in place (Updater:
  one copy per batch, one symmetric BLAS rank-one update per outcome) rather than to a fresh copy
  per outcome.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.linalg import blas

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
        """mean then cov as little-endian float64, for storage (see from_bytes).

        The whole matrix, although it is symmetric: storing its upper triangle would halve what
        every outcome batch writes, but workers of the previous release read only this layout,
        and during a rolling update they share the table with the new ones."""
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


class Updater:
    """A working copy of one state that absorbs outcomes in place; `state()` hands it over frozen
    (without another copy of the mean: the updater takes no outcome after that).

    The copy is made once, when the updater is made, so the state it came from is never touched.
    Each outcome is the same step as `update`: cov' x = cov x / (1 + h x^T cov x), so the mean moves
    without a second matrix product. The covariance is symmetric, so the working copy keeps its
    upper triangle only, in Fortran order, and each outcome is three BLAS calls on it in place: a
    symmetric matrix-vector product (dsymv), a symmetric rank-one update (dsyr) and an axpy on
    the mean. That halves the arithmetic of a general product and rank-one update, and the calls
    are about half of what an outcome costs at dimension 128 (measured: 7.8 against 14.6 us an
    outcome); `state()` mirrors the triangle back into the full matrix the state carries."""

    def __init__(self, state: LogisticState) -> None:
        self.mean = state.mean.copy()
        # A copy; only its upper triangle is kept current (the lower one is stale until state()).
        self._cov = np.array(state.cov, dtype=np.float64, order="F")
        self.count = state.count
        self._handed_over = False

    def add(self, x: Array, y: bool, offset: float = 0.0) -> None:
        if self._handed_over:
            raise RuntimeError("this updater's state was handed over; make a new Updater from it")
        p = sigmoid(offset + float(blas.ddot(self.mean, x)))
        h = max(p * (1.0 - p), 1e-6)
        cx = blas.dsymv(1.0, self._cov, x)
        denom = 1.0 + h * float(blas.ddot(x, cx))
        # In place when scipy can (it can for the Fortran-ordered copy made above); the results
        # are taken either way, so a copy it had to make would not be lost.
        self._cov = blas.dsyr(-h / denom, cx, a=self._cov, overwrite_a=True)
        self.mean = blas.daxpy(cx, self.mean, a=((1.0 if y else 0.0) - p) / denom)
        self.count += 1

    def state(self) -> LogisticState:
        self._handed_over = True
        cov = np.triu(self._cov)
        cov += np.triu(cov, 1).T
        return LogisticState(self.mean, cov, self.count)


def update(state: LogisticState, x: Array, y: bool, offset: float = 0.0) -> LogisticState:
    """The posterior after one outcome y at features x (a new state; the old one is untouched)."""
    updater = Updater(state)
    updater.add(x, y, offset)
    return updater.state()
