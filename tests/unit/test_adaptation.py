"""Vector adaptation: profiles and task vectors stay unit length and move the right way."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from processors.adaptation import cosine, normalize, update_profile, update_task_vector
from processors.embedders.base import Vector

DIM = 8
raw = arrays(np.float32, DIM, elements=st.floats(-1, 1, width=32))
rates = st.floats(0.01, 1.0)


def unit(v: Vector) -> Vector:
    assume(float(np.linalg.norm(v)) > 1e-2)
    return normalize(v)


def vec(*xs: float) -> Vector:
    return normalize(np.array(xs, dtype=np.float32))


def test_cosine_table() -> None:
    assert cosine(vec(1, 0), vec(1, 0)) == pytest.approx(1.0)
    assert cosine(vec(1, 0), vec(0, 1)) == pytest.approx(0.0)
    assert cosine(vec(1, 0), vec(-1, 0)) == pytest.approx(-1.0)
    assert cosine(np.zeros(2, np.float32), vec(1, 0)) == 0.0
    with pytest.raises(ValueError):
        cosine(vec(1, 0), vec(1, 0, 0))


def test_normalize_rejects_vectors_without_direction() -> None:
    with pytest.raises(ValueError):
        normalize(np.zeros(3, np.float32))
    out = normalize(np.array([3, 4], np.float32))
    assert out.dtype == np.float32 and np.allclose(out, [0.6, 0.8])


def test_first_observation_initialises_the_profile() -> None:
    profile, weight = update_profile(None, 0.0, np.array([0, 2, 0], np.float32), 0.1)
    assert weight == 1.0 and np.allclose(profile, [0, 1, 0])


def test_young_profiles_average_and_old_ones_follow_the_learning_rate() -> None:
    p, w = update_profile(vec(1, 0), 1.0, vec(0, 1), 0.1)
    assert w == 2.0 and np.allclose(p, vec(1, 1), atol=1e-6)  # running mean of two tasks
    old, _ = update_profile(vec(1, 0), 100.0, vec(0, 1), 0.1)
    assert np.allclose(old, vec(0.9, 0.1), atol=1e-6)  # EMA step of 0.1


def test_task_vector_moves_toward_the_success_profile_on_success_and_away_on_failure() -> None:
    v, profile = vec(1, 0, 0), vec(0, 1, 0)
    toward = update_task_vector(v, profile, True, 0.2)
    away = update_task_vector(v, profile, False, 0.2)
    assert cosine(toward, profile) > cosine(v, profile) > cosine(away, profile)
    assert np.allclose(update_task_vector(v, None, True, 0.2), v)


@given(raw, raw, st.floats(0, 1000), rates)
def test_profile_updates_keep_unit_norm_and_move_toward_the_task(
    p_raw: Vector, t_raw: Vector, weight: float, lr: float
) -> None:
    profile, task = unit(p_raw), unit(t_raw)
    assume(cosine(profile, task) > -0.999)  # exactly opposite vectors have no direction between them
    new, new_weight = update_profile(profile, weight, task, lr)
    assert new.dtype == np.float32
    assert float(np.linalg.norm(new)) == pytest.approx(1.0, abs=1e-5)
    assert cosine(new, task) >= cosine(profile, task) - 1e-5
    assert new_weight == (weight + 1.0 if weight > 0 else 1.0)


@given(raw, raw, rates, st.booleans())
def test_task_vector_updates_keep_unit_norm_and_move_the_right_way(
    v_raw: Vector, p_raw: Vector, lr: float, succeeded: bool
) -> None:
    v, profile = unit(v_raw), unit(p_raw)
    new = update_task_vector(v, profile, succeeded, lr)
    assert new.dtype == np.float32
    assert float(np.linalg.norm(new)) == pytest.approx(1.0, abs=1e-5)
    before, after = cosine(v, profile), cosine(new, profile)
    if succeeded:
        assert after >= before - 1e-5
    else:
        assert after <= before + 1e-5
