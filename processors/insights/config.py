"""The insights' knobs, one object (built from the settings); light to import."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from processors.insights.arms import ArmUsageConfig


@dataclass(frozen=True, slots=True)
class InsightsConfig:
    success_target: float = 0.8
    max_clusters: int = 12
    recluster_s: float = 900.0
    recent: timedelta = timedelta(days=7)  # tasks considered for gaps, schedules for 'dominated'
    failure_limit: int = 20_000  # failures clustered at most (the newest)
    execution_limit: int = 20_000  # executions a cluster's failure rate is measured on
    task_limit: int = 5_000  # recent tasks clustered for gaps
    min_cluster_size: int = 3
    arms: ArmUsageConfig = field(default_factory=ArmUsageConfig)
