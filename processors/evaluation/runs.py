"""One replay's record (live or offline), and the baseline predictors replayed on the same terms."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from processors.evaluation.dataset import Dataset
from processors.evaluation.offline import Feedback, OfflineOptions, Prediction, replay_offline
from processors.scheduling.types import Arm, SchedulerConfig

# The base-rate baselines' names: keys of every report's scores and calibration, and the stem of
# their routing rows and sweeps.
PER_ARM_BASELINE = "base rates (per agent/model)"
PER_KIND_BASELINE = "base rates per kind"
BASELINES = (PER_ARM_BASELINE, PER_KIND_BASELINE)
# The synthetic ground truth scored as a predictor (reports of datasets that carry it): a floor for
# every score, not a baseline to beat.
TRUE_PROBABILITIES = "true probabilities"


@dataclass(frozen=True, slots=True)
class RunRecord:
    """Per task: the prediction, how many leading tasks' outcomes it could have seen, and which
    arms' outcomes were then revealed."""

    label: str
    success_target: float
    feedback: Feedback
    predictions: tuple[Prediction, ...]
    visible: tuple[int, ...]
    revealed: tuple[tuple[Arm, ...], ...]
    seconds: float | None = None
    use_profiles: bool = True
    learning_rate: float = 0.1
    success_value_usd: float | None = None  # set: the run chose by the value rule

    @property
    def setting(self) -> str:
        """The choice rule's setting, as the report names the run."""
        if self.success_value_usd is not None:
            return f"value ${self.success_value_usd:g}"
        return f"target {self.success_target:g}"

    def __post_init__(self) -> None:
        n = len(self.predictions)
        if len(self.visible) != n or len(self.revealed) != n:
            raise ValueError("predictions, visible and revealed must have one entry per task")


def revealed_for(dataset: Dataset, feedback: Feedback, chosen: Sequence[Arm]) -> tuple[tuple[Arm, ...], ...]:
    """Arms whose outcome a replay publishes: all of them (full) or the chosen one if the data has it."""
    out = []
    for item, arm in zip(dataset.tasks, chosen, strict=True):
        if feedback == "full":
            out.append(tuple(o.arm for o in item.outcomes))
        else:
            out.append((arm,) if item.outcome(arm) is not None else ())
    return tuple(out)


def baseline_config(config: SchedulerConfig) -> SchedulerConfig:
    """The same decision rule without anything vector-based."""
    return dataclasses.replace(config, use_profiles=False)


def base_rate_predictions(
    dataset: Dataset, config: SchedulerConfig, run: RunRecord, *, per_kind: bool
) -> list[Prediction]:
    """Per-(agent, model) success rates without similarity (globally, or per kind), fed exactly the
    outcomes the run revealed, with at least the run's visibility: the fair comparison for scores."""
    revealed = run.revealed
    return replay_offline(
        dataset,
        baseline_config(config),
        OfflineOptions(neighbours=False, use_kind=per_kind, feedback=run.feedback),
        run.visible,
        revealed_arms=lambda j, chosen: revealed[j],
    )


def base_rate_policy(
    dataset: Dataset, config: SchedulerConfig, run: RunRecord, *, per_kind: bool
) -> list[Prediction]:
    """The base-rate rule run as its own policy: under bandit feedback it sees only its own picks."""
    if run.feedback == "full":
        return base_rate_predictions(dataset, config, run, per_kind=per_kind)
    return replay_offline(
        dataset,
        baseline_config(config),
        OfflineOptions(neighbours=False, use_kind=per_kind, feedback="bandit"),
        run.visible,
    )
