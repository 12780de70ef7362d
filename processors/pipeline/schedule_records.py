"""The records a task decision becomes: profile affinities for the decision's input, and the
task-schedule event built from a decision. Pure (no I/O), shared by the worker and the API's
read-only recommendations so the two build the same record."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from msgspec import UNSET

from processors.contracts import ArmAlternative, SimilarTask, TaskCreated, TaskSchedule
from processors.embedders.base import Vector
from processors.records import output_event_id
from processors.scheduling.types import Arm, ArmEstimate, Decision, NeighbourOutcome, ProfileAffinity


def profile_affinities(
    vectors: Sequence[Vector], profiles: dict[tuple[Arm, str], tuple[Vector, float]]
) -> list[dict[Arm, ProfileAffinity]]:
    """Each task's similarity to every adapted profile: one matrix product for the batch."""
    if not profiles or not vectors:
        return [{} for _ in vectors]
    keys = sorted(profiles)  # a fixed column order: the product is then the same to the last bit
    column = {key: j for j, key in enumerate(keys)}
    similarities = (np.vstack(vectors) @ np.vstack([profiles[k][0] for k in keys]).T).tolist()
    arms = sorted({arm for arm, _ in keys})
    out = []
    for row in similarities:
        affinity = {}
        for arm in arms:
            good, bad = column.get((arm, "success")), column.get((arm, "failure"))
            affinity[arm] = ProfileAffinity(
                success_similarity=None if good is None else row[good],
                failure_similarity=None if bad is None else row[bad],
                success_weight=0.0 if good is None else profiles[keys[good]][1],
                failure_weight=0.0 if bad is None else profiles[keys[bad]][1],
            )
        out.append(affinity)
    return out


def _alternative(e: ArmEstimate) -> ArmAlternative:
    return ArmAlternative(
        agent=e.arm.agent,
        model=e.arm.model,
        success_probability=e.success_probability,
        confidence=e.confidence,
        predicted_duration_ms=e.predicted_duration_ms,
        expected_cost_usd=e.expected_cost_usd,
        evidence=e.evidence,
        meets_target=e.meets_target,
        score=e.score,
    )


def build_schedule(
    task: TaskCreated,
    decision: Decision,
    neighbours: Sequence[NeighbourOutcome],
    embedding_model: str,
    target: float,
    unsatisfiable: tuple[str, ...] = (),
) -> TaskSchedule:
    similar: dict[str, float] = {}
    for n in neighbours:
        similar.setdefault(n.task_id, round(n.similarity, 6))
    chosen = decision.chosen
    schedule_id = f"{task.task_id}:{task.event_id}"
    return TaskSchedule(
        unsatisfiable_requirements=unsatisfiable or UNSET,
        event_id=output_event_id("schedule", schedule_id),
        occurred_at=datetime.now(UTC),
        schedule_id=schedule_id,
        task_id=task.task_id,
        kind=task.kind,
        priority=task.priority,
        deadline=task.deadline,
        agent=chosen.arm.agent,
        model=chosen.arm.model,
        success_probability=chosen.success_probability,
        confidence=chosen.confidence,
        predicted_duration_ms=chosen.predicted_duration_ms,
        expected_cost_usd=chosen.expected_cost_usd,
        success_target=target,
        cold_start=decision.cold_start,
        exploration=decision.exploration,
        embedding_model=embedding_model,
        alternatives=tuple(_alternative(e) for e in decision.alternatives),
        similar_tasks=tuple(SimilarTask(t, s) for t, s in similar.items()),
        source_event_id=task.event_id,
    )
