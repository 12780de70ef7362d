"""Scores for probabilistic predictions of binary outcomes, and duration error. Pure.

Every function takes parallel sequences (prediction, outcome) and returns None when the score is
undefined (no pairs; AUC with only one class), never NaN.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

LOG_LOSS_EPS = 1e-6  # predictions are clipped to [eps, 1 - eps] so one confident miss stays finite


@dataclass(frozen=True, slots=True)
class CalibrationBin:
    lower: float
    upper: float
    count: int
    mean_prediction: float | None
    observed_rate: float | None


def _pairs(predictions: Sequence[float], outcomes: Sequence[bool]) -> list[tuple[float, float]]:
    if len(predictions) != len(outcomes):
        raise ValueError(f"{len(predictions)} predictions but {len(outcomes)} outcomes")
    return [
        (min(max(float(p), 0.0), 1.0), 1.0 if y else 0.0) for p, y in zip(predictions, outcomes, strict=True)
    ]


def brier(predictions: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Mean squared difference between the predicted probability and the 0/1 outcome."""
    pairs = _pairs(predictions, outcomes)
    if not pairs:
        return None
    return math.fsum((p - y) ** 2 for p, y in pairs) / len(pairs)


def log_loss(
    predictions: Sequence[float], outcomes: Sequence[bool], eps: float = LOG_LOSS_EPS
) -> float | None:
    """Mean negative log-likelihood (natural log) with predictions clipped to [eps, 1 - eps]."""
    pairs = _pairs(predictions, outcomes)
    if not pairs:
        return None
    total = 0.0
    for p, y in pairs:
        q = min(max(p, eps), 1.0 - eps)
        total -= math.log(q) if y else math.log(1.0 - q)
    return total / len(pairs)


def auc(predictions: Sequence[float], outcomes: Sequence[bool]) -> float | None:
    """Area under the ROC curve: P(score of a random success > score of a random failure), ties 1/2.

    Computed from average ranks (Mann-Whitney U), O(n log n).
    """
    pairs = _pairs(predictions, outcomes)
    positives = sum(1 for _, y in pairs if y)
    negatives = len(pairs) - positives
    if positives == 0 or negatives == 0:
        return None
    ordered = sorted(pairs, key=lambda pair: pair[0])
    rank_sum = 0.0
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1][0] == ordered[i][0]:
            j += 1
        average_rank = (i + j) / 2.0 + 1.0  # ranks are 1-based; tied scores share their mean rank
        rank_sum += average_rank * sum(1 for k in range(i, j + 1) if ordered[k][1])
        i = j + 1
    u = rank_sum - positives * (positives + 1) / 2.0
    return u / (positives * negatives)


def _bin_indices(predictions: npt.NDArray[np.float64], bins: int) -> npt.NDArray[np.int64]:
    """Equal-width bins over [0, 1]; a prediction of exactly 1 falls in the last bin."""
    return np.minimum((predictions * bins).astype(np.int64), bins - 1)


def calibration_bins(
    predictions: Sequence[float], outcomes: Sequence[bool], bins: int = 10
) -> list[CalibrationBin]:
    """Count, mean prediction and observed rate in each bin of `_bin_indices`."""
    if bins < 1:
        raise ValueError("bins must be at least 1")
    pairs = np.asarray(_pairs(predictions, outcomes), dtype=np.float64).reshape(-1, 2)
    index = _bin_indices(pairs[:, 0], bins)
    counts = np.bincount(index, minlength=bins)
    sums = np.bincount(index, weights=pairs[:, 0], minlength=bins)
    hits = np.bincount(index, weights=pairs[:, 1], minlength=bins)
    return [
        CalibrationBin(
            lower=b / bins,
            upper=(b + 1) / bins,
            count=int(counts[b]),
            mean_prediction=float(sums[b] / counts[b]) if counts[b] else None,
            observed_rate=float(hits[b] / counts[b]) if counts[b] else None,
        )
        for b in range(bins)
    ]


def expected_calibration_error(
    predictions: Sequence[float], outcomes: Sequence[bool], bins: int = 10
) -> float | None:
    """Sum over bins of (share of predictions in the bin) x |mean prediction - observed rate|."""
    table = calibration_bins(predictions, outcomes, bins)
    n = sum(b.count for b in table)
    if n == 0:
        return None
    return math.fsum(
        b.count / n * abs(b.mean_prediction - b.observed_rate)
        for b in table
        if b.count and b.mean_prediction is not None and b.observed_rate is not None
    )


def calibrated_ece(predictions: Sequence[float], bins: int = 10, resamples: int = 200) -> float | None:
    """The ECE a perfectly calibrated forecaster making exactly these predictions would show: the
    mean ECE over outcomes drawn from the predictions themselves (consistency resampling, Broecker
    and Smith 2007; a fixed seed, so a report is reproducible).

    ECE is not zero for a calibrated forecaster: every bin's observed rate carries binomial noise,
    and the sharper the predictions, the more bins share the pairs and the more noise shows. A
    forecaster that always says its base rate fills a few bins with many pairs each and shows
    little; one that spreads its predictions shows more while calibrated. This is the yardstick to
    read an ECE against. Draws are independent per pair, so where outcomes are correlated (one task,
    many arms) the real noise is larger still.
    """
    if bins < 1 or resamples < 1:
        raise ValueError("bins and resamples must be at least 1")
    ps = np.clip(np.asarray(predictions, dtype=np.float64), 0.0, 1.0)
    if ps.size == 0:
        return None
    index = _bin_indices(ps, bins)
    predicted = np.bincount(index, weights=ps, minlength=bins)
    rng = np.random.default_rng(20_071_204)
    errors = []
    for _ in range(resamples):
        drawn = (rng.random(ps.size) < ps).astype(np.float64)
        observed = np.bincount(index, weights=drawn, minlength=bins)
        errors.append(float(np.abs(predicted - observed).sum()) / ps.size)
    return math.fsum(errors) / resamples


def mean_absolute_error(predicted: Sequence[float | None], actual: Sequence[float | None]) -> float | None:
    """Mean |predicted - actual| over the pairs where both are known."""
    if len(predicted) != len(actual):
        raise ValueError(f"{len(predicted)} predictions but {len(actual)} actual values")
    errors = [abs(p - a) for p, a in zip(predicted, actual, strict=True) if p is not None and a is not None]
    return math.fsum(errors) / len(errors) if errors else None


@dataclass(frozen=True, slots=True)
class ProbabilityScores:
    count: int
    brier: float | None
    log_loss: float | None
    auc: float | None
    ece: float | None
    ece_if_calibrated: float | None  # calibrated_ece: the ECE sampling noise alone gives
    mean_prediction: float | None
    observed_rate: float | None


def probability_scores(predictions: Sequence[float], outcomes: Sequence[bool]) -> ProbabilityScores:
    n = len(predictions)
    return ProbabilityScores(
        count=n,
        brier=brier(predictions, outcomes),
        log_loss=log_loss(predictions, outcomes),
        auc=auc(predictions, outcomes),
        ece=expected_calibration_error(predictions, outcomes),
        ece_if_calibrated=calibrated_ece(predictions),
        mean_prediction=math.fsum(predictions) / n if n else None,
        observed_rate=sum(1 for y in outcomes if y) / n if n else None,
    )
