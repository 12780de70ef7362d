"""Bookkeeping of a live prequential replay, kept pure so its rules are unit-tested.

Rules (the driver in streams/commands/evaluate_driver.py follows them):
- tasks are published in dataset order; task i only once the outcomes of tasks 0..i-N-1 have been
  applied by the worker (N = reveal delay), so its schedule has seen at least those;
- a task's outcomes are published only after its own schedule has been received, so no outcome is
  ever visible to its own schedule; with full feedback every arm's outcome, with bandit feedback
  only the chosen arm's;
- all outcome events go to one partition in task order, so "the worker has applied k outcome
  events" means "the first k were applied", which turns a counter into a prefix of tasks.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from processors.contracts import ArmAlternative, ExecutionResult, TaskSchedule
from processors.evaluation.dataset import Dataset, outcome_cost, tier_rows
from processors.evaluation.offline import Feedback, Prediction
from processors.evaluation.runs import RunRecord
from processors.scheduling.types import Arm, TierOption


def default_tiers(dataset: Dataset) -> tuple[TierOption, ...]:
    """The tier table of the replay (dataset.tier_rows: the header's, completed with '*' rows)."""
    return tier_rows(dataset)


def _toml_string(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def tiers_toml(tiers: tuple[TierOption, ...]) -> str:
    """The tier table in deploy/tiers.toml format (rows of a kind in tier order)."""
    lines = ["# written by tasksage evaluate from the dataset header"]
    for row in sorted(tiers, key=lambda t: (t.kind, t.tier)):
        lines.append(f"\n[[kinds.{_toml_string(row.kind)}]]")
        lines.append(f"agent = {_toml_string(row.arm.agent)}")
        lines.append(f"model = {_toml_string(row.arm.model)}")
        for key, value in (
            ("cost_per_call_usd", row.cost_per_call_usd),
            ("expected_duration_ms", row.expected_duration_ms),
            ("prior_success", row.prior_success),
        ):
            if value is not None:
                lines.append(f"{key} = {float(value)!r}")
    return "\n".join(lines) + "\n"


def _alternative(a: ArmAlternative) -> tuple[Arm, float, float | None, float | None]:
    return Arm(a.agent, a.model), a.success_probability, a.expected_cost_usd, a.predicted_duration_ms


def prediction_from_schedule(schedule: TaskSchedule) -> Prediction:
    rows = [_alternative(a) for a in schedule.alternatives]
    return Prediction(
        chosen=Arm(schedule.agent, schedule.model),
        exploration=schedule.exploration,
        cold_start=schedule.cold_start,
        probabilities={arm: p for arm, p, _, _ in rows},
        costs={arm: c for arm, _, c, _ in rows},
        durations={arm: d for arm, _, _, d in rows},
    )


def result_events(dataset: Dataset, index: int, arms: tuple[Arm, ...]) -> list[ExecutionResult]:
    item = dataset.tasks[index]
    task = item.task
    out = []
    for arm in arms:
        outcome = item.outcome(arm)
        if outcome is None:
            continue
        finished = task.occurred_at + timedelta(milliseconds=outcome.duration_ms or 0.0)
        out.append(
            ExecutionResult(
                event_id=f"eval-result:{task.task_id}:{arm.agent}:{arm.model}",
                occurred_at=finished,
                task_id=task.task_id,
                agent=arm.agent,
                model=arm.model,
                success=outcome.success,
                finished_at=finished,
                duration_ms=outcome.duration_ms,
                cost_usd=outcome_cost(dataset, outcome),
            )
        )
    return out


def arms_to_reveal(dataset: Dataset, index: int, chosen: Arm, feedback: Feedback) -> tuple[Arm, ...]:
    item = dataset.tasks[index]
    if feedback == "full":
        return tuple(o.arm for o in item.outcomes)
    return (chosen,) if item.outcome(chosen) is not None else ()


@dataclass(slots=True)
class RevealLedger:
    """Which tasks may be published, which outcomes may be revealed, and what each schedule saw."""

    tasks: int
    delay: int
    published: int = 0
    revealed: int = 0
    # events[m] = outcome events published for tasks < m (m <= revealed)
    events: list[int] = field(default_factory=lambda: [0])

    def applied_prefix(self, applied_events: int) -> int:
        """How many leading tasks have every revealed outcome applied, given the applied count."""
        # events is non-decreasing; the last m with events[m] <= applied_events.
        return min(self.revealed, bisect.bisect_right(self.events, applied_events) - 1)

    def publishable(self, applied_events: int) -> int:
        """How many tasks may have been published by now (task i needs tasks < i - delay applied)."""
        return min(self.tasks, self.applied_prefix(applied_events) + max(self.delay, 0) + 1)

    def mark_published(self, count: int = 1) -> None:
        if self.published + count > self.tasks:
            raise ValueError("cannot publish more tasks than the dataset has")
        self.published += count

    def mark_revealed(self, events: int) -> None:
        """The next task's outcomes (`events` of them) were published."""
        if self.revealed >= self.published:
            raise ValueError("a task's outcomes cannot be revealed before the task is published")
        self.revealed += 1
        self.events.append(self.events[-1] + events)

    @property
    def total_events(self) -> int:
        return self.events[-1]

    def done(self) -> bool:
        return self.revealed == self.tasks


def schedule_record(
    run: RunRecord, task_id: str, pred: Prediction, seen: int, shown: tuple[Arm, ...]
) -> dict[str, Any]:
    """One line of schedules.jsonl: a schedule, what it could see, what was then revealed."""

    def name(arm: Arm) -> str:
        return f"{arm.agent}/{arm.model}"

    return {
        "run": run.label,
        "success_target": run.success_target,
        "success_value_usd": run.success_value_usd,
        "task_id": task_id,
        "chosen": name(pred.chosen),
        "cold_start": pred.cold_start,
        "exploration": pred.exploration,
        "outcomes_visible_of_first_tasks": seen,
        "revealed": [name(a) for a in shown],
        "success_probability": {name(a): round(p, 6) for a, p in sorted(pred.probabilities.items())},
        "expected_cost_usd": {name(a): c for a, c in sorted(pred.costs.items())},
        "predicted_duration_ms": {name(a): d for a, d in sorted(pred.durations.items())},
    }
