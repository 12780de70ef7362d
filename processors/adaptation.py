"""Vector adaptation from outcomes. Pure numpy; every vector is float32 and unit length.

- Arm profiles (Rocchio): each (arm, outcome) keeps a centroid of the tasks it succeeded / failed
  on. The scheduler reads a task's similarity to both as a small nudge (estimates._profile_nudge).
- Task vectors: when a task's outcome arrives its vector moves toward the success profile of the
  arm that succeeded, or away from it on failure, so later neighbour searches see the outcome.
"""

from __future__ import annotations

import math

import numpy as np

from processors.embedders.base import Vector

_TINY = 1e-12


def normalize(vector: Vector) -> Vector:
    """Unit-length float32 copy. A zero or non-finite vector is an error: it has no direction."""
    v = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(v))
    if not math.isfinite(norm) or norm < _TINY:
        raise ValueError("cannot normalise a zero or non-finite vector")
    return (v / norm).astype(np.float32)


def cosine(a: Vector, b: Vector) -> float:
    """Cosine similarity in [-1, 1]; 0 when either vector is zero. Shapes must match."""
    if a.shape != b.shape:
        raise ValueError(f"vector shapes differ: {a.shape} vs {b.shape}")
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    den = float(np.linalg.norm(x) * np.linalg.norm(y))
    if den < _TINY:
        return 0.0
    return max(-1.0, min(1.0, float(np.dot(x, y)) / den))


def update_profile(
    profile: Vector | None, weight: float, task_vector: Vector, learning_rate: float
) -> tuple[Vector, float]:
    """Move a profile toward a task vector; returns (new unit profile, new weight = outcomes seen).

    The step is max(learning_rate, 1 / (weight + 1)): a running mean while the profile is young
    (so the first task does not dominate it), an exponential moving average with the configured
    rate afterwards (so old outcomes fade).
    """
    target = normalize(task_vector)
    if profile is None or weight <= 0:
        return target, 1.0
    if profile.shape != target.shape:
        raise ValueError(f"profile and task vector shapes differ: {profile.shape} vs {target.shape}")
    step = min(1.0, max(learning_rate, 1.0 / (weight + 1.0)))
    mixed = (1.0 - step) * np.asarray(profile, np.float64) + step * np.asarray(target, np.float64)
    if float(np.linalg.norm(mixed)) < 1e-6:
        return target, weight + 1.0  # exactly opposite directions cancelled: restart from the task
    return normalize(mixed.astype(np.float32)), weight + 1.0


def update_task_vector(
    task_vector: Vector, success_profile: Vector | None, succeeded: bool, learning_rate: float
) -> Vector:
    """v' = normalise(v + sign * lr * (profile - v)): toward the profile on success, away on failure.

    Without a profile (the arm never succeeded yet) the vector is returned unchanged.
    """
    v = normalize(task_vector)
    if success_profile is None or learning_rate <= 0:
        return v
    if success_profile.shape != v.shape:
        raise ValueError(f"profile and task vector shapes differ: {success_profile.shape} vs {v.shape}")
    p = np.asarray(normalize(success_profile), np.float64)
    x = np.asarray(v, np.float64)
    sign = 1.0 if succeeded else -1.0
    # Capped at 1: a full step lands on the profile; further would overshoot past it.
    moved = x + sign * min(learning_rate, 1.0) * (p - x)
    if float(np.linalg.norm(moved)) < 1e-6:
        return v
    return normalize(moved.astype(np.float32))
