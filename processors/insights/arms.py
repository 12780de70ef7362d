"""Agents and models in use: shares, success, cost, load, and flags worth a look. Pure.

Flags (thresholds in ArmUsageConfig, every one a setting):
- unused: no schedule chose the arm for `unused_days` (or ever), though it is configured;
- dominated: the arm was a candidate, yet never the cheapest arm meeting the success target
  in any recent schedule, so it costs configuration and never wins on merit;
- overloaded: its pending work (scheduled, no result yet) is more than it finishes in
  `overload_hours` at its recent throughput.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.contracts.events import ArmFlag
from processors.scheduling.types import Arm


@dataclass(frozen=True, slots=True)
class ArmUsageConfig:
    unused_days: float = 7.0
    overload_hours: float = 1.0
    throughput_window_hours: float = 24.0


@dataclass(frozen=True, slots=True)
class ArmActivity:
    """What the database says about one arm (repository-filled)."""

    arm: Arm
    configured: bool  # listed in the tier table
    schedules: int  # schedules that chose it (all time)
    outcomes: int
    successes: int
    cost_sum_usd: float
    cost_n: int
    pending: int  # pending tasks whose latest schedule chose it
    recent_outcomes: int  # outcomes within the throughput window
    last_scheduled_at: datetime | None
    candidate_in: int  # recent schedules listing it among the alternatives
    cheapest_meeting_target: int  # ... where it was the cheapest arm meeting the target


@dataclass(frozen=True, slots=True)
class ArmReport:
    arm: Arm
    schedule_share: float
    outcome_share: float
    success_rate: float | None
    mean_cost_usd: float | None
    pending: int
    throughput_per_hour: float
    flags: tuple[ArmFlag, ...]


def arm_reports(activity: Sequence[ArmActivity], now: datetime, config: ArmUsageConfig) -> list[ArmReport]:
    schedules = sum(a.schedules for a in activity)
    outcomes = sum(a.outcomes for a in activity)
    out = []
    for a in activity:
        throughput = a.recent_outcomes / config.throughput_window_hours
        flags: list[ArmFlag] = []
        stale = now - timedelta(days=config.unused_days)
        if a.configured and (a.last_scheduled_at is None or a.last_scheduled_at < stale):
            flags.append("unused")
        if a.candidate_in > 0 and a.cheapest_meeting_target == 0:
            flags.append("dominated")
        if a.pending > 0 and a.pending > throughput * config.overload_hours:
            flags.append("overloaded")
        out.append(
            ArmReport(
                arm=a.arm,
                schedule_share=a.schedules / schedules if schedules else 0.0,
                outcome_share=a.outcomes / outcomes if outcomes else 0.0,
                success_rate=a.successes / a.outcomes if a.outcomes else None,
                mean_cost_usd=a.cost_sum_usd / a.cost_n if a.cost_n else None,
                pending=a.pending,
                throughput_per_hour=throughput,
                flags=tuple(flags),
            )
        )
    return sorted(out, key=lambda r: (-r.schedule_share, r.arm))
