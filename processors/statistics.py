"""Small pure arithmetic on outcome counts: Beta posteriors, shrunk means, totals.

Idempotence (an outcome counted once) is the database layer's job; these are just sums.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import msgspec


class ArmTotals(msgspec.Struct, frozen=True, gc=False):
    """Outcome counts for one arm in one scope (all tasks, one kind, or one past task)."""

    attempts: float = 0.0
    successes: float = 0.0
    duration_sum_ms: float = 0.0
    duration_n: float = 0.0
    cost_sum_usd: float = 0.0
    cost_n: float = 0.0

    @property
    def failures(self) -> float:
        return self.attempts - self.successes


def beta_posterior(
    successes: float, attempts: float, prior_mean: float, prior_strength: float
) -> tuple[float, float]:
    """(alpha, beta) of Beta(prior_strength * prior_mean, prior_strength * (1 - prior_mean)) after the data.

    Counts may be fractional (similarity-weighted). Out-of-range inputs are clamped rather than
    rejected: a slightly inconsistent row must not stop scheduling.
    """
    n = max(attempts, 0.0)
    s = min(max(successes, 0.0), n)
    p0 = min(max(prior_mean, 0.0), 1.0)
    m = max(prior_strength, 0.0)
    return m * p0 + s, m * (1.0 - p0) + (n - s)


def beta_mean(alpha: float, beta: float, default: float = 0.5) -> float:
    total = alpha + beta
    return alpha / total if total > 0 else default


def beta_variance(alpha: float, beta: float) -> float:
    """Variance of Beta(alpha, beta); the uniform's 1/12 when there is nothing at all."""
    total = alpha + beta
    if total <= 0:
        return 1.0 / 12.0
    return alpha * beta / (total * total * (total + 1.0))


def shrunk_rate(successes: float, attempts: float, prior_mean: float, prior_strength: float) -> float:
    """Posterior mean rate: the observed rate pulled toward prior_mean by prior_strength pseudo-counts.

    The pull fades as evidence grows: the data's weight is attempts / (attempts + prior_strength).
    """
    alpha, beta = beta_posterior(successes, attempts, prior_mean, prior_strength)
    return beta_mean(alpha, beta, default=min(max(prior_mean, 0.0), 1.0))


def shrunk_mean(total: float, n: float, prior: float | None, prior_strength: float) -> float | None:
    """Mean of n observations summing to total, shrunk toward prior with prior_strength pseudo-observations.

    No prior: the plain mean (None without data). No data: the prior.
    """
    n = max(n, 0.0)
    if prior is None:
        return total / n if n > 0 else None
    m = max(prior_strength, 0.0)
    if n + m <= 0:
        return prior
    return (total + m * prior) / (n + m)


def weighted_mean(values: Iterable[float], weights: Iterable[float]) -> float | None:
    """Weighted mean ignoring non-positive weights; None when no weight remains."""
    num = 0.0
    den = 0.0
    for v, w in zip(values, weights, strict=True):
        if w > 0:
            num += w * v
            den += w
    return num / den if den > 0 else None


def _check(name: str, value: float | None) -> None:
    # Events are schema-validated upstream; this stops a NaN from poisoning a counter forever.
    if value is not None and (not math.isfinite(value) or value < 0):
        raise ValueError(f"{name} must be a finite non-negative number, got {value!r}")


def add_outcome(
    totals: ArmTotals | None, success: bool, duration_ms: float | None, cost_usd: float | None
) -> ArmTotals:
    """Totals after one more outcome; a missing duration or cost leaves its mean untouched."""
    _check("duration_ms", duration_ms)
    _check("cost_usd", cost_usd)
    t = totals or ArmTotals()
    return ArmTotals(
        attempts=t.attempts + 1.0,
        successes=t.successes + (1.0 if success else 0.0),
        duration_sum_ms=t.duration_sum_ms + (duration_ms or 0.0),
        duration_n=t.duration_n + (1.0 if duration_ms is not None else 0.0),
        cost_sum_usd=t.cost_sum_usd + (cost_usd or 0.0),
        cost_n=t.cost_n + (1.0 if cost_usd is not None else 0.0),
    )


def mean_duration_ms(totals: ArmTotals) -> float | None:
    return totals.duration_sum_ms / totals.duration_n if totals.duration_n > 0 else None


def mean_cost_usd(totals: ArmTotals) -> float | None:
    return totals.cost_sum_usd / totals.cost_n if totals.cost_n > 0 else None
