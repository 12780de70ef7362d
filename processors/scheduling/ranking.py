"""Order pending work. Pure: the caller supplies `now`.

score =   priority_weight  * priority
        + success_weight   * success_probability          (likely wins first)
        - duration_weight  * log10(predicted_duration_ms) (shorter first; log: 1 s vs 10 s matters
                                                           as much as 1 min vs 10 min)
        + deadline_weight  * urgency                      (exp(-remaining / horizon); overdue = 1)
        + age_weight       * hours waiting                (unbounded, so nothing starves)

Datetimes must be comparable (all timezone-aware, as the event contracts produce).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable, Sequence
from datetime import datetime

from processors.scheduling.types import PendingTask, RankingConfig


def deadline_urgency(deadline: datetime | None, now: datetime, horizon_s: float) -> float:
    """0 without a deadline; rises toward 1 as the deadline nears; exactly 1 once due or overdue."""
    if deadline is None:
        return 0.0
    remaining = (deadline - now).total_seconds()
    if remaining <= 0:
        return 1.0
    return math.exp(-remaining / max(horizon_s, 1e-9))


def task_score(task: PendingTask, now: datetime, config: RankingConfig) -> float:
    p = task.success_probability
    p = min(1.0, max(0.0, p)) if math.isfinite(p) else 0.0
    duration = task.predicted_duration_ms
    if duration is None or not math.isfinite(duration):
        duration = config.default_duration_ms
    age_h = max(0.0, (now - task.created_at).total_seconds()) / 3600.0
    return (
        config.priority_weight * task.priority
        + config.success_weight * p
        - config.duration_weight * math.log10(max(duration, 1.0))
        + config.deadline_weight * deadline_urgency(task.deadline, now, config.deadline_horizon_s)
        + config.age_weight * age_h
    )


def _rank_key(scored: tuple[PendingTask, float]) -> tuple[float, datetime, str]:
    task, score = scored
    return (-score, task.created_at, task.task_id)


def rank_pending(
    tasks: Sequence[PendingTask], now: datetime, config: RankingConfig
) -> list[tuple[PendingTask, float]]:
    """Highest score first; ties go to the older task, then to the smaller task id."""
    return sorted(((t, task_score(t, now, config)) for t in tasks), key=_rank_key)


def top_ranked(scored: Iterable[tuple[PendingTask, float]], n: int) -> list[tuple[PendingTask, float]]:
    """The first n of rank_pending's order, from already scored tasks, without sorting them all."""
    return heapq.nsmallest(n, scored, key=_rank_key)
