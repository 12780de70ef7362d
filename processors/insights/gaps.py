"""Capability gaps: regions of task space where no arm is predicted to reach the target. Pure.

Recent tasks are clustered by their vectors (MiniBatchKMeans). In each cluster every arm's
predicted success is averaged over the tasks it was a candidate for (the alternatives of the
task's latest schedule); the best arm and its probability say what the current agents can do
there. A cluster whose best arm stays under the success target is a gap: work to hand to a new
agent, a bigger model, or a person.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from processors.insights.failures import cluster_count
from processors.scheduling.types import Arm


@dataclass(frozen=True, slots=True)
class RecentTask:
    task_id: str
    kind: str
    description: str
    predicted: Mapping[Arm, float]  # candidate arm -> predicted success probability


@dataclass(frozen=True, slots=True)
class CapabilityGap:
    cluster: int
    tasks: int
    kinds: tuple[tuple[str, int], ...]
    best_arm: Arm
    best_probability: float
    examples: tuple[str, ...]  # up to three task descriptions


def find_gaps(
    tasks: Sequence[RecentTask],
    vectors: npt.NDArray[np.float32],
    target: float,
    max_clusters: int = 12,
    min_tasks: int = 3,
    seed: int = 0,
) -> list[CapabilityGap]:
    """Clusters of at least min_tasks tasks whose best arm is predicted under `target`, the
    lowest best probability first."""
    if len(tasks) < min_tasks:
        return []
    k = cluster_count(len(tasks), max_clusters)
    from sklearn.cluster import MiniBatchKMeans  # about a second to load: only when used

    labels = MiniBatchKMeans(n_clusters=k, random_state=seed, n_init=3, batch_size=256).fit_predict(vectors)
    gaps = []
    for c in range(k):
        members = [t for t, label in zip(tasks, labels, strict=True) if label == c]
        if len(members) < min_tasks:
            continue
        sums: dict[Arm, list[float]] = {}
        for t in members:
            for arm, p in t.predicted.items():
                sums.setdefault(arm, []).append(p)
        if not sums:
            continue
        best, probability = max(
            ((arm, float(np.mean(ps))) for arm, ps in sums.items()), key=lambda ap: (ap[1], ap[0])
        )
        if probability >= target:
            continue
        gaps.append(
            CapabilityGap(
                cluster=c,
                tasks=len(members),
                kinds=tuple(Counter(t.kind for t in members).most_common()),
                best_arm=best,
                best_probability=probability,
                examples=tuple(t.description for t in members[:3]),
            )
        )
    return sorted(gaps, key=lambda g: (g.best_probability, -g.tasks, g.cluster))
