"""Failure patterns: failed executions clustered by task vector and error-message vector. Pure.

A failure's point is its task vector next to its error message's vector (same embedder), unit
length and weighted (ERROR_WEIGHT), so a cluster is "this kind of task failing in this way". MiniBatchKMeans clusters
them: `FailureClusters.refit` on a schedule, `join` for failures that arrived since (partial_fit
moves the centres a little, predict labels the newcomers), so nothing rescans history per outcome.

Each cluster is judged against all executions of the arms it hits: every execution is assigned
to the cluster whose task-part centre is nearest (cosine), and each arm's failure rate there is
compared with that arm's overall failure rate (the lift); the cluster's headline is its main arm.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from processors.scheduling.types import Arm

if TYPE_CHECKING:
    from sklearn.cluster import MiniBatchKMeans

Matrix = npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class FailedExecution:
    event_id: str
    task_id: str
    arm: Arm
    kind: str
    description: str
    error_message: str


@dataclass(frozen=True, slots=True)
class ArmFailures:
    arm: Arm
    failures: int
    executions: int  # of this arm's executions assigned to the cluster
    failure_rate: float
    overall_failure_rate: float


@dataclass(frozen=True, slots=True)
class Representative:
    task_id: str
    description: str
    error_message: str


@dataclass(frozen=True, slots=True)
class FailureCluster:
    cluster: int
    size: int  # failures in it
    # The main arm's (most failures in the cluster; arms[0]) figures:
    executions: int  # its executions assigned to the cluster
    failure_rate: float  # its failure rate there
    overall_failure_rate: float  # its failure rate over all its executions
    lift: float  # failure_rate / overall_failure_rate
    # One-sided binomial test of its failures there against its overall rate: how likely a rate
    # this high is by chance (small clusters of an arm's ordinary failures score high here).
    p_value: float
    arms: tuple[ArmFailures, ...]  # most failures first
    kinds: tuple[tuple[str, int], ...]
    representatives: tuple[Representative, ...]


def _unit(m: Matrix) -> Matrix:
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    return (m / np.where(norms == 0, 1.0, norms)).astype(np.float32)


# The error message weighs twice the task: a cluster is first a way of failing, then a kind of
# task. With equal weights the demo's planted weakness (six failures of one arm with one error,
# on two phrasings of one family) split into two clusters of three by phrasing, neither telling.
ERROR_WEIGHT = 2.0


def points(task_vectors: Matrix, error_vectors: Matrix) -> Matrix:
    return np.hstack([_unit(task_vectors), ERROR_WEIGHT * _unit(error_vectors)]).astype(np.float32)


def cluster_count(n: int, max_clusters: int) -> int:
    """About sqrt(n) clusters, at least 1, at most max_clusters. (sqrt(n / 2), the usual rule
    of thumb, merged a small weakness of one arm into a neighbouring family in the demo.)"""
    return max(1, min(max_clusters, n, round(math.sqrt(n))))


class FailureClusters:
    """The MiniBatchKMeans model and the failures it has labelled."""

    def __init__(self, max_clusters: int = 12, seed: int = 0) -> None:
        self.max_clusters = max_clusters
        self.seed = seed
        self.model: MiniBatchKMeans | None = None
        self.samples: list[FailedExecution] = []
        self.points: Matrix = np.zeros((0, 0), dtype=np.float32)
        self.labels: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)

    def refit(self, samples: Sequence[FailedExecution], pts: Matrix) -> None:
        """Cluster from scratch (the scheduled re-cluster)."""
        self.samples = list(samples)
        self.points = pts
        if not samples:
            self.model, self.labels = None, np.zeros(0, dtype=np.int64)
            return
        k = cluster_count(len(samples), self.max_clusters)
        # scipy and scikit-learn load in about a second: only when insights are computed,
        # never on a worker's start.
        from sklearn.cluster import MiniBatchKMeans

        self.model = MiniBatchKMeans(n_clusters=k, random_state=self.seed, n_init=3, batch_size=256)
        self.labels = self.model.fit_predict(pts).astype(np.int64)

    def join(self, samples: Sequence[FailedExecution], pts: Matrix) -> None:
        """New failures join the nearest clusters; the centres move toward them (partial_fit)."""
        if not samples:
            return
        if self.model is None or len(self.samples) < self.model.n_clusters:
            self.refit([*self.samples, *samples], np.vstack([self.points, pts]) if self.samples else pts)
            return
        self.model.partial_fit(pts)
        self.samples += list(samples)
        self.points = np.vstack([self.points, pts])
        self.labels = np.concatenate([self.labels, self.model.predict(pts).astype(np.int64)])

    def task_centres(self, dimension: int) -> Matrix:
        assert self.model is not None
        return _unit(np.asarray(self.model.cluster_centers_[:, :dimension], dtype=np.float32))


def assign(task_vectors: Matrix, centres: Matrix) -> npt.NDArray[np.int64]:
    """Nearest centre (cosine) of each execution's task vector."""
    nearest: npt.NDArray[np.int64] = np.argmax(_unit(task_vectors) @ centres.T, axis=1).astype(np.int64)
    return nearest


def describe(
    clusters: FailureClusters,
    executions: Sequence[tuple[Arm, bool]],
    execution_labels: npt.NDArray[np.int64],
    overall: Mapping[Arm, tuple[int, int]],
    min_size: int = 3,
) -> list[FailureCluster]:
    """Clusters with at least min_size failures, worst lift first. `executions`: (arm, success) of
    recent executions, `execution_labels` their assigned clusters; `overall`: arm -> (attempts,
    failures) over all time."""
    if clusters.model is None:
        return []
    out = []
    for c in range(clusters.model.n_clusters):
        members = [i for i, label in enumerate(clusters.labels) if label == c]
        if len(members) < min_size:
            continue
        failed = Counter(clusters.samples[i].arm for i in members)
        assigned: Counter[Arm] = Counter()
        assigned_failures: Counter[Arm] = Counter()
        for (arm, success), label in zip(executions, execution_labels, strict=True):
            if label == c and arm in failed:
                assigned[arm] += 1
                assigned_failures[arm] += int(not success)
        arms = tuple(
            ArmFailures(
                arm,
                n,
                assigned[arm],
                assigned_failures[arm] / assigned[arm] if assigned[arm] else 1.0,
                _rate(overall.get(arm)),
            )
            for arm, n in sorted(failed.items(), key=lambda kv: (-kv[1], kv[0]))
        )
        # The cluster is read through its main arm (most failures in it): "this arm fails on
        # this kind of task this much more often than it fails overall". Other arms it hits
        # keep their own rates in `arms`; a blend of them would dilute a weakness of one arm
        # with the successes of the others on the same tasks.
        main = arms[0]
        base = main.overall_failure_rate
        out.append(
            FailureCluster(
                cluster=c,
                size=len(members),
                executions=main.executions,
                failure_rate=main.failure_rate,
                overall_failure_rate=base,
                lift=main.failure_rate / base if base > 0 else math.inf,
                p_value=_p_value(main),
                arms=arms,
                kinds=tuple(Counter(clusters.samples[i].kind for i in members).most_common()),
                representatives=_representatives(clusters, c, members),
            )
        )
    return sorted(out, key=lambda f: (-f.lift, -f.size, f.cluster))


def _p_value(arm: ArmFailures) -> float:
    failed = round(arm.failure_rate * arm.executions)
    if arm.executions == 0 or arm.overall_failure_rate >= 1.0:
        return 1.0
    from scipy.stats import binomtest  # loaded on first use, like scikit-learn above

    return float(binomtest(failed, arm.executions, arm.overall_failure_rate, alternative="greater").pvalue)


def _rate(totals: tuple[int, int] | None) -> float:
    if not totals or not totals[0]:
        return 0.0
    return totals[1] / totals[0]


def _representatives(clusters: FailureClusters, c: int, members: list[int]) -> tuple[Representative, ...]:
    """The three failures nearest the centre, one per task."""
    assert clusters.model is not None
    centre = clusters.model.cluster_centers_[c]
    distance = np.linalg.norm(clusters.points[members] - centre, axis=1)
    picked: list[Representative] = []
    seen: set[str] = set()
    for j in np.argsort(distance, kind="stable"):
        s = clusters.samples[members[int(j)]]
        if s.task_id in seen:
            continue
        seen.add(s.task_id)
        picked.append(Representative(s.task_id, s.description, s.error_message))
        if len(picked) == 3:
            break
    return tuple(picked)
