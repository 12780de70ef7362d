"""Insights, read from the database and decided by processors/insights: load -> decide.

`InsightsBuilder` keeps the failure clusters between calls: failures recorded since the last
call join them (partial_fit), and every `recluster_s` they are clustered again from the stored
failures, so a worker refreshing insights each interval never rescans history per outcome.
Error messages are embedded with the task embedder, each distinct message once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

from processors.contracts import (
    AccuracyWindow,
    ArmUsage,
    FailureExample,
    FailurePattern,
    GapReport,
    InsightsSnapshot,
)
from processors.embedders.base import Embedder, Vector
from processors.insights.accuracy import WINDOWS, Breakdown, breakdown, window_start
from processors.insights.arms import ArmReport, arm_reports
from processors.insights.config import InsightsConfig
from processors.insights.failures import (
    FailedExecution,
    FailureCluster,
    FailureClusters,
    Matrix,
    assign,
    describe,
    points,
)
from processors.insights.gaps import CapabilityGap, find_gaps
from processors.postgres import accuracy as accuracy_store
from processors.postgres import insights as store
from processors.postgres.pool import Pool

# Distinct error messages whose vectors are kept between passes.
MAX_CACHED_ERRORS = 50_000


class InsightsBuilder:
    def __init__(self, pool: Pool, embedder: Embedder, config: InsightsConfig) -> None:
        self.pool = pool
        self.embedder = embedder
        self.config = config
        self.clusters = FailureClusters(config.max_clusters)
        self._watermark: store.Watermark | None = None
        self._clustered_at = -float("inf")
        self._error_vectors: dict[str, Vector] = {}
        self.last_accuracy: list[Breakdown] = []  # of the latest accuracy() call

    async def accuracy(self, now: datetime | None = None) -> list[Breakdown]:
        """Every window, each summed in the database (bounded by arms x kinds x bins rows)."""
        now = now or datetime.now(UTC)
        out = []
        async with self.pool.acquire() as conn:
            for w in WINDOWS:
                out.append(breakdown(await accuracy_store.load(conn, window_start(now, w)), now, w))
        self.last_accuracy = out
        return out

    async def _error_matrix(self, samples: Sequence[FailedExecution]) -> Matrix:
        if len(self._error_vectors) > MAX_CACHED_ERRORS:  # messages carrying ids never repeat
            self._error_vectors.clear()
        missing = sorted({s.error_message for s in samples} - set(self._error_vectors))
        if missing:
            self._error_vectors.update(zip(missing, await self.embedder.embed(missing), strict=True))
        return np.vstack([self._error_vectors[s.error_message] for s in samples])

    async def failures(self) -> list[FailureCluster]:
        due = time.monotonic() - self._clustered_at >= self.config.recluster_s
        async with self.pool.acquire() as conn:
            # A re-cluster takes the newest failures; a join, those recorded since the last pass.
            found = await store.failures(
                conn,
                self.embedder.model_name,
                None if due else self._watermark,
                self.config.failure_limit,
                newest=due,
            )
            executions, vectors = await store.recent_executions(
                conn, self.embedder.model_name, self.config.execution_limit
            )
            overall = await store.arm_totals(conn)
        if found:
            samples = [f for f, _, _ in found]
            pts = points(np.vstack([v for _, v, _ in found]), await self._error_matrix(samples))
            # Off the event loop: a re-cluster of many failures takes seconds of CPU.
            if due:
                await asyncio.to_thread(self.clusters.refit, samples, pts)
                self._clustered_at = time.monotonic()
            else:
                await asyncio.to_thread(self.clusters.join, samples, pts)
            self._watermark = found[-1][2]
        if self.clusters.model is None or not executions:
            return []
        labels = assign(vectors, self.clusters.task_centres(self.embedder.dimension))
        return await asyncio.to_thread(
            describe, self.clusters, executions, labels, overall, self.config.min_cluster_size
        )

    async def gaps(self, now: datetime | None = None) -> list[CapabilityGap]:
        now = now or datetime.now(UTC)
        async with self.pool.acquire() as conn:
            tasks, vectors = await store.recent_tasks(
                conn, self.embedder.model_name, now - self.config.recent, self.config.task_limit
            )
        return await asyncio.to_thread(
            find_gaps,
            tasks,
            vectors,
            self.config.success_target,
            self.config.max_clusters,
            self.config.min_cluster_size,
        )

    async def arms(self, now: datetime | None = None) -> list[ArmReport]:
        now = now or datetime.now(UTC)
        window = timedelta(hours=self.config.arms.throughput_window_hours)
        async with self.pool.acquire() as conn:
            activity = await store.arm_activity(conn, now, window, self.config.recent)
        return arm_reports(activity, now, self.config.arms)

    async def snapshot(self, now: datetime | None = None) -> InsightsSnapshot:
        now = now or datetime.now(UTC)
        return InsightsSnapshot(
            event_id=f"insights:{now.isoformat()}",
            occurred_at=now,
            success_target=self.config.success_target,
            accuracy=tuple(accuracy_window(b) for b in await self.accuracy(now)),
            failure_patterns=tuple(failure_pattern(f) for f in await self.failures()),
            capability_gaps=tuple(gap_report(g) for g in await self.gaps(now)),
            arms=tuple(arm_usage(a) for a in await self.arms(now)),
        )


def _r(x: float | None, digits: int = 6) -> float | None:
    return None if x is None else round(x, digits)


def accuracy_window(b: Breakdown) -> AccuracyWindow:
    o = b.overall
    return AccuracyWindow(
        b.window,
        o.outcomes,
        _r(o.success_rate),
        _r(o.mean_probability),
        _r(o.brier),
        _r(o.log_loss),
        _r(o.ece),
        _r(o.duration_mae_ms, 1),
        _r(o.cost_mae_usd),
    )


def failure_pattern(f: FailureCluster) -> FailurePattern:
    return FailurePattern(
        size=f.size,
        failure_rate=round(f.failure_rate, 6),
        overall_failure_rate=round(f.overall_failure_rate, 6),
        lift=None if not np.isfinite(f.lift) else round(f.lift, 6),
        p_value=float(f"{f.p_value:.4g}"),
        arms=tuple(f"{a.arm.agent}/{a.arm.model}" for a in f.arms),
        kinds=tuple(k for k, _ in f.kinds),
        examples=tuple(FailureExample(r.task_id, r.description, r.error_message) for r in f.representatives),
    )


def gap_report(g: CapabilityGap) -> GapReport:
    return GapReport(
        g.tasks,
        tuple(k for k, _ in g.kinds),
        g.best_arm.agent,
        g.best_arm.model,
        round(g.best_probability, 6),
        g.examples,
    )


def arm_usage(a: ArmReport) -> ArmUsage:
    return ArmUsage(
        a.arm.agent,
        a.arm.model,
        round(a.schedule_share, 6),
        round(a.outcome_share, 6),
        _r(a.success_rate),
        _r(a.mean_cost_usd),
        a.pending,
        round(a.throughput_per_hour, 6),
        a.flags,
    )
