"""An in-memory prequential replay around the real decision code (processors.scheduling.decide).

It keeps what the database keeps (per-arm totals globally and per kind, per-task outcomes, arm
profile vectors) in dicts, finds neighbours by exact cosine search, and calls `decide` for every
task with exactly the outcomes visible to it. Uses:
- the baselines without similarity (per-(agent, model) base rates, globally or per kind), which are
  the same decision rule with the neighbour evidence switched off;
- fast parameter studies (seconds instead of minutes). The numbers that count are the live ones from
  `tasksage evaluate`, which runs the worker, broker and database; this model differs from it only in
  exact versus HNSW search and in batch boundaries.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import numpy.typing as npt

from processors import statistics as st
from processors.adaptation import update_profile
from processors.evaluation.dataset import Dataset, outcome_cost, tier_rows
from processors.scheduling import decide
from processors.scheduling.learned import (
    LearnedConfig,
    LearnedState,
    apply_outcomes,
    initial_state,
    learned_input,
    project,
)
from processors.scheduling.tiers import tiers_for_kind
from processors.scheduling.types import (
    Arm,
    NeighbourOutcome,
    ProfileAffinity,
    SchedulerConfig,
    SchedulingInput,
    TierOption,
)
from processors.statistics import ArmTotals

Feedback = Literal["full", "bandit"]


@dataclass(frozen=True, slots=True)
class Prediction:
    """What a scheduler said about one task: the pick and every arm's estimates."""

    chosen: Arm
    exploration: bool
    cold_start: bool
    probabilities: dict[Arm, float]
    costs: dict[Arm, float | None]
    durations: dict[Arm, float | None]
    notes: tuple[str, ...] = ()  # the decision's notes (offline only: schedules do not carry them)
    features: dict[Arm, tuple[float, ...]] = field(default_factory=dict)  # the learned layer's inputs


@dataclass(frozen=True, slots=True)
class OfflineOptions:
    neighbours: bool = True
    use_kind: bool = True
    learning_rate: float = 0.1  # profile adaptation; only read when config.use_profiles
    feedback: Feedback = "full"
    learned: LearnedConfig | None = None  # the learned layer (scheduling/learned.py); None: off


@dataclass(slots=True)
class _State:
    global_stats: dict[Arm, ArmTotals] = field(default_factory=dict)
    kind_stats: dict[str, dict[Arm, ArmTotals]] = field(default_factory=lambda: defaultdict(dict))
    task_outcomes: dict[int, dict[Arm, ArmTotals]] = field(default_factory=lambda: defaultdict(dict))
    profiles: dict[tuple[Arm, str], tuple[npt.NDArray[np.float32], float]] = field(default_factory=dict)
    searchable: list[int] = field(default_factory=list)  # task indices with outcomes, in reveal order
    matrix: npt.NDArray[np.float32] | None = None  # their vectors, row r = searchable[r]
    tiers: tuple[TierOption, ...] = ()  # dataset.tier_rows, computed once per replay
    learned: LearnedState | None = None


def visible_prefix(tasks: int, delay: int) -> list[int]:
    """Outcomes of tasks < i - delay are visible to task i (delay 0: every earlier task)."""
    return [max(0, i - delay) for i in range(tasks)]


def replay_offline(
    dataset: Dataset,
    config: SchedulerConfig,
    options: OfflineOptions,
    visible: Sequence[int],
    vectors: npt.NDArray[np.float32] | None = None,
    revealed_arms: Callable[[int, Arm], Sequence[Arm]] | None = None,
) -> list[Prediction]:
    """Decide every task in order; before task i, apply the outcomes of tasks < visible[i].

    `revealed_arms(j, chosen)` says which arms' outcomes of task j become known; by default every
    arm (full feedback) or the chosen one (bandit). Vectors (unit rows, one per task) are needed for
    neighbours and profiles.
    """
    n = len(dataset.tasks)
    if len(visible) != n or any(v > i for i, v in enumerate(visible)):
        raise ValueError("visible[i] must exist for every task and never exceed i")
    if (options.neighbours or config.use_profiles) and vectors is None:
        raise ValueError("neighbours and profiles need task vectors")
    state = _State(tiers=tier_rows(dataset))
    if options.learned is not None and options.learned.enabled:
        state.learned = initial_state(options.learned)
    applied = 0
    out: list[Prediction] = []
    for i in range(n):
        while applied < visible[i]:
            arms = _reveal(dataset, options, out[applied].chosen, applied, revealed_arms)
            _apply(dataset, state, applied, arms, vectors, config, options)
            _learn(dataset, state, applied, arms, out[applied], vectors, options)
            applied += 1
        out.append(_decide(dataset, state, i, vectors, config, options))
    return out


def _reveal(
    dataset: Dataset,
    options: OfflineOptions,
    chosen: Arm,
    j: int,
    revealed_arms: Callable[[int, Arm], Sequence[Arm]] | None,
) -> Sequence[Arm]:
    if revealed_arms is not None:
        return revealed_arms(j, chosen)
    if options.feedback == "full":
        return [o.arm for o in dataset.tasks[j].outcomes]
    return [chosen]


def _apply(
    dataset: Dataset,
    state: _State,
    j: int,
    arms: Sequence[Arm],
    vectors: npt.NDArray[np.float32] | None,
    config: SchedulerConfig,
    options: OfflineOptions,
) -> None:
    item = dataset.tasks[j]
    kind = item.task.kind
    seen = False
    for arm in arms:
        outcome = item.outcome(arm)
        if outcome is None:
            continue
        seen = True
        cost = outcome_cost(dataset, outcome)
        state.global_stats[arm] = st.add_outcome(
            state.global_stats.get(arm), outcome.success, outcome.duration_ms, cost
        )
        if kind:
            state.kind_stats[kind][arm] = st.add_outcome(
                state.kind_stats[kind].get(arm), outcome.success, outcome.duration_ms, cost
            )
        state.task_outcomes[j][arm] = st.add_outcome(
            state.task_outcomes[j].get(arm), outcome.success, outcome.duration_ms, cost
        )
        if config.use_profiles and options.learning_rate > 0 and vectors is not None:
            key = (arm, "success" if outcome.success else "failure")
            profile, weight = state.profiles.get(key, (None, 0.0))
            state.profiles[key] = update_profile(profile, weight, vectors[j], options.learning_rate)
    if seen:
        if vectors is not None:
            if state.matrix is None:
                state.matrix = np.empty_like(vectors)
            state.matrix[len(state.searchable)] = vectors[j]
        state.searchable.append(j)


def _learn(
    dataset: Dataset,
    state: _State,
    j: int,
    arms: Sequence[Arm],
    pred: Prediction,
    vectors: npt.NDArray[np.float32] | None,
    options: OfflineOptions,
) -> None:
    """The learned layer learns from task j's revealed outcomes, with the features its schedule had."""
    if state.learned is None or options.learned is None:
        return
    phi = (
        project(vectors[j], options.learned, len(dataset.tasks[j].task.description))
        if vectors is not None
        else None
    )
    revealed = []
    for arm in arms:
        outcome = dataset.tasks[j].outcome(arm)
        feats = pred.features.get(arm)
        if outcome is not None and feats:
            revealed.append((arm, feats, phi, outcome.success))
    state.learned = apply_outcomes(state.learned, revealed, options.learned)


def _neighbours(state: _State, i: int, vectors: npt.NDArray[np.float32], k: int) -> list[NeighbourOutcome]:
    if not state.searchable or k <= 0 or state.matrix is None:
        return []
    count = len(state.searchable)
    sims = state.matrix[:count] @ vectors[i]  # a view: no copy of the searched rows
    top = min(k, count)
    best = np.argpartition(-sims, top - 1)[:top]
    best = best[np.argsort(-sims[best], kind="stable")]
    out = []
    for b in best:
        j = state.searchable[int(b)]
        for arm, totals in sorted(state.task_outcomes[j].items()):
            out.append(NeighbourOutcome(f"t{j}", float(sims[b]), arm, totals))
    return out


def _affinities(state: _State, vector: npt.NDArray[np.float32]) -> dict[Arm, ProfileAffinity]:
    out = {}
    for arm in {a for a, _ in state.profiles}:
        good = state.profiles.get((arm, "success"))
        bad = state.profiles.get((arm, "failure"))
        out[arm] = ProfileAffinity(
            success_similarity=None if good is None else float(good[0] @ vector),
            failure_similarity=None if bad is None else float(bad[0] @ vector),
            success_weight=0.0 if good is None else good[1],
            failure_weight=0.0 if bad is None else bad[1],
        )
    return out


def _decide(
    dataset: Dataset,
    state: _State,
    i: int,
    vectors: npt.NDArray[np.float32] | None,
    config: SchedulerConfig,
    options: OfflineOptions,
) -> Prediction:
    task = dataset.tasks[i].task
    kind = task.kind if options.use_kind else None
    kind_stats = state.kind_stats.get(kind, {}) if kind else {}
    neighbours = (
        _neighbours(state, i, vectors, config.neighbour_k)
        if options.neighbours and vectors is not None
        else []
    )
    profiles = _affinities(state, vectors[i]) if config.use_profiles and vectors is not None else {}
    learned = None
    if state.learned is not None and options.learned is not None:
        phi = project(vectors[i], options.learned, len(task.description)) if vectors is not None else None
        learned = learned_input(state.learned, phi, {t.arm for t in state.tiers} | set(state.global_stats))
    decision = decide(
        SchedulingInput(
            task_id=task.task_id,
            kind=kind,
            priority=task.priority,
            requested_agent=task.requested_agent,
            global_stats=state.global_stats,
            kind_stats=kind_stats,
            neighbours=neighbours,
            tiers=tiers_for_kind(state.tiers, kind),
            profiles=profiles,
            learned=learned,
        ),
        config,
    )
    alts = decision.alternatives
    return Prediction(
        chosen=decision.chosen.arm,
        exploration=decision.exploration,
        cold_start=decision.cold_start,
        probabilities={e.arm: e.success_probability for e in alts},
        costs={e.arm: e.expected_cost_usd for e in alts},
        durations={e.arm: e.predicted_duration_ms for e in alts},
        notes=decision.notes,
        features={e.arm: e.features for e in alts if e.features},
    )
