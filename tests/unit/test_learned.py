"""Known answers of the learned layer: online logistic stacking and the per-arm text models."""

from __future__ import annotations

import math
import random
from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from processors.scheduling import learned as ln
from processors.scheduling import learned_rows
from processors.scheduling import online_logistic as ol
from processors.scheduling.text_length import LengthCentre, raw_coordinate
from processors.scheduling.types import Arm

ARM = Arm("coder", "small")


def _stack_after(samples: list[tuple[tuple[float, ...], bool]], variance: float = 0.1) -> ol.LogisticState:
    state = ol.prior(len(ln.FEATURES), variance)
    for feats, y in samples:
        state = ol.update(state, np.asarray(feats), y, offset=feats[1])
    return state


def _feats(base: float, source: float, index: int) -> tuple[float, ...]:
    values = [1.0, ol.logit(base), 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]
    values[index] = source
    return tuple(values)


def test_a_source_that_predicts_nothing_keeps_a_weight_near_zero() -> None:
    rng = random.Random(1)
    samples = []
    for _ in range(3000):
        base = rng.uniform(0.2, 0.8)
        samples.append((_feats(base, rng.gauss(0.0, 1.0), 4), rng.random() < base))
    w = _stack_after(samples).mean
    assert abs(w[4]) < 0.08
    assert abs(w[0]) < 0.15 and abs(w[1]) < 0.15  # the base rate was calibrated: nothing to fix


def test_a_perfect_source_earns_a_weight_near_one() -> None:
    rng = random.Random(2)
    samples = []
    for _ in range(3000):
        base = rng.uniform(0.2, 0.8)
        shift = rng.gauss(0.0, 1.5)  # the true logit is base + shift; the source reports the shift
        y = rng.random() < ol.sigmoid(ol.logit(base) + shift)
        samples.append((_feats(base, shift, 4), y))
    w = _stack_after(samples).mean
    assert abs(w[4] - 1.0) < 0.15


def test_few_outcomes_move_the_weights_little() -> None:
    rng = random.Random(3)
    samples = [(_feats(0.5, rng.gauss(0.0, 1.0), 4), rng.random() < 0.5) for _ in range(200)]
    assert float(np.max(np.abs(_stack_after(samples).mean))) < 0.2


def _direction_data(rng: np.random.Generator, n: int, dim: int) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal((n, dim))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, x[:, 0] > 0.0


def test_outcomes_separable_along_one_direction_are_learned() -> None:
    rng = np.random.default_rng(4)
    x, y = _direction_data(rng, 600, 16)
    state = ol.prior(16, 1.0)
    for xi, yi in zip(x, y, strict=True):
        state = ol.update(state, xi, bool(yi))
    fresh_x, fresh_y = _direction_data(rng, 500, 16)
    predicted = np.array([ol.predict_logit(state, xi) > 0 for xi in fresh_x])
    assert float(np.mean(predicted == fresh_y)) > 0.9
    assert int(np.argmax(np.abs(state.mean))) == 0


def test_the_vector_is_projected_below_its_dimension_and_used_as_it_is_at_it() -> None:
    vector = np.array([3.0, 0.0, 4.0, 0.0])
    same = ln.project(vector, ln.LearnedConfig(text_dimension=4, text_length_scale=0.0))
    assert same is not None
    assert same.tolist() == [0.6, 0.0, 0.8, 0.0]
    smaller = ln.project(vector, ln.LearnedConfig(text_dimension=2, text_length_scale=0.0))
    assert smaller is not None
    assert smaller.shape == (2,)
    assert np.allclose(smaller, ln._projection(4, 2) @ np.array([0.6, 0.0, 0.8, 0.0]), rtol=1e-12, atol=1e-15)
    assert ln.project(vector, ln.LearnedConfig(text_dimension=0)) is None
    assert ln.project(np.zeros(4), ln.LearnedConfig(text_dimension=4)) is None


def test_the_length_coordinate_is_the_scaled_log_length_centred_on_the_outcomes_before() -> None:
    config = ln.LearnedConfig(text_dimension=4, text_length_scale=0.5)
    vector = np.array([3.0, 0.0, 4.0, 0.0])
    phi = ln.project(vector, config, 300)
    assert phi is not None
    assert phi[:4].tolist() == [0.6, 0.0, 0.8, 0.0]
    assert phi[4] == 0.5 * math.log(300)
    unknown = ln.project(vector, config, None)
    assert unknown is not None and math.isnan(unknown[4])
    assert ln.project(vector, replace(config, text_length_scale=0.0), 300).tolist() == [0.6, 0.0, 0.8, 0.0]

    # Before any outcome every length is at the centre; then the centre is the mean raw coordinate
    # of the outcomes learned (an unknown length is not counted and sits at the centre).
    centre = LengthCentre()
    assert centre.centred(phi[4]) == 0.0
    for chars in (100, 1000, None, 10_000):
        centre = centre.after(raw_coordinate(chars, 0.5))
    assert centre.count == 3
    assert math.isclose(centre.mean, 0.5 * math.log(1000), rel_tol=1e-12)
    assert math.isclose(centre.centred(raw_coordinate(10, 0.5)), 0.5 * math.log(10 / 1000), rel_tol=1e-12)
    assert centre.centred(raw_coordinate(None, 0.5)) == 0.0
    assert LengthCentre.from_row(centre.to_row()) == centre

    # The state centres as the outcomes come, one by one, whatever batches bring them.
    feats = ln.features(0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0)
    outcomes = [(ARM, feats, ln.project(vector, config, n), True) for n in (100, 1000, 10_000)]
    state = ln.apply_outcomes(ln.initial_state(config), outcomes, config)
    assert state.length is not None and state.length.count == 3
    assert math.isclose(state.length.mean, 0.5 * math.log(1000), rel_tol=1e-12)
    stepwise = ln.initial_state(config)
    for outcome in outcomes:
        stepwise = ln.apply_outcomes(stepwise, [outcome], config)
    assert learned_rows.store(stepwise) == learned_rows.store(state)


def test_a_weak_arm_failing_on_long_texts_learns_its_own_slope_and_a_strong_one_none() -> None:
    """Success of the weak arm falls with the text's length, the strong arm's does not; the
    vectors say nothing. After 1,500 tasks the weak arm's length logit is well below zero on a long
    text and above it on a short one, and the strong arm's stays near zero on both."""
    config = ln.LearnedConfig(text_dimension=16)
    weak, strong = Arm("llm", "weak"), Arm("llm", "strong")
    rng = np.random.default_rng(9)
    state = ln.initial_state(config)
    feats = {arm: ln.features(p, p, p, p, 0.0, 0.0, 0.0) for arm, p in ((weak, 0.6), (strong, 0.85))}
    for _ in range(1500):
        chars = int(rng.integers(60, 1500))
        phi = ln.project(rng.standard_normal(64), config, chars)
        weak_p = ol.sigmoid(ol.logit(0.6) - 1.2 * math.log(chars / 300))
        outcomes = [(weak, feats[weak], phi, bool(rng.random() < weak_p))]
        outcomes.append((strong, feats[strong], phi, bool(rng.random() < 0.85)))
        state = ln.apply_outcomes(state, outcomes, config)
    vector = rng.standard_normal(64)
    short = ln.learned_input(state, ln.project(vector, config, 80), [weak, strong])
    long = ln.learned_input(state, ln.project(vector, config, 1200), [weak, strong])
    # ln(1200 / 80) = 2.7 times the slope: true -1.2, so -3.2 logits apart.
    assert -3.8 < long.length_arm[weak] - short.length_arm[weak] < -2.6
    assert abs(long.length_arm[strong] - short.length_arm[strong]) < 0.3
    assert long.text_arm == short.text_arm  # the text models see the vector alone


def test_pure_noise_leaves_the_text_model_at_the_base_rate() -> None:
    config = ln.LearnedConfig(text_dimension=16)
    rng = np.random.default_rng(5)
    state = ln.initial_state(config)
    base = 0.3
    feats = ln.features(base, base, base, base, 0.0, 0.0, 0.0)
    for _ in range(1500):  # lengths as unrelated to the outcome as the vectors
        phi = ln.project(rng.standard_normal(64), config, int(rng.integers(20, 2000)))
        state = ln.apply_outcomes(state, [(ARM, feats, phi, bool(rng.random() < base))], config)
    probs = []
    for _ in range(200):
        phi = ln.project(rng.standard_normal(64), config, int(rng.integers(20, 2000)))
        inp = ln.learned_input(state, phi, [ARM])
        f = ln.features(base, base, base, base, inp.text_arm[ARM], inp.text_all, inp.length_arm[ARM])
        probs.append(ln.stacked_probability(inp.weights, f))
    assert abs(float(np.mean(probs)) - base) < 0.03
    assert float(np.max(np.abs(np.array(probs) - base))) < 0.08


def test_with_no_outcomes_the_layer_returns_the_kind_rate_at_the_fitted_strength() -> None:
    state = ln.initial_state(ln.LearnedConfig())
    inp = ln.learned_input(state, None, [ARM])
    kind_light, kind_fitted = 0.9, 0.55
    p = ln.stacked_probability(inp.weights, ln.features(0.4, kind_light, kind_fitted, 0.95, 0.0, 0.0, 0.0))
    assert math.isclose(p, kind_fitted, rel_tol=1e-9)


def test_the_calibration_weights_start_tighter_than_the_sources() -> None:
    config = ln.LearnedConfig()
    cov = np.diag(ln.initial_state(config).stacker.cov)
    for name, variance in zip(ln.FEATURES, cov, strict=True):
        expected = (
            config.calibration_prior_variance if name in ("bias", "base") else config.stack_prior_variance
        )
        assert variance == expected


_OUTCOME = hs.tuples(
    hs.lists(hs.floats(-3.0, 3.0), min_size=8, max_size=8),
    hs.floats(0.05, 0.95),
    hs.booleans(),
    hs.sampled_from([Arm("a", "x"), Arm("b", "y")]),
)


@settings(max_examples=40, deadline=None)
@given(hs.lists(_OUTCOME, min_size=1, max_size=30), hs.integers(min_value=0, max_value=30))
def test_a_state_stored_and_restored_mid_stream_ends_where_one_pass_ends(
    outcomes: list[tuple[list[float], float, bool, Arm]], cut: int
) -> None:
    """Restart from the stored state at any point (what a worker does after a crash: the inbox
    has applied each outcome once) and the state equals the one of a single uninterrupted pass."""
    config = ln.LearnedConfig(text_dimension=4)

    def step(state: ln.LearnedState, item: tuple[list[float], float, bool, Arm]) -> ln.LearnedState:
        vector, base, y, arm = item
        feats = ln.features(base, base, base, base, vector[0], vector[1], vector[2])
        phi = ln.project(vector, config, 1 + int(100 * abs(vector[3])))
        return ln.apply_outcomes(state, [(arm, feats, phi, y)], config)

    one = ln.initial_state(config)
    for item in outcomes:
        one = step(one, item)
    two = ln.initial_state(config)
    for item in outcomes[:cut]:
        two = step(two, item)
    two = learned_rows.restore(learned_rows.store(two), config)
    for item in outcomes[cut:]:
        two = step(two, item)
    assert learned_rows.store(one) == learned_rows.store(two)


def _read_only(state: ln.LearnedState) -> ln.LearnedState:
    """The state with every array locked: an update that wrote into it would raise."""
    models = [
        state.stacker,
        *([state.text_all] if state.text_all is not None else []),
        *state.text_arm.values(),
        *state.length_arm.values(),
    ]
    for model in models:
        model.mean.flags.writeable = False
        model.cov.flags.writeable = False
    return state


@settings(max_examples=40, deadline=None)
@given(hs.lists(_OUTCOME, min_size=1, max_size=30), hs.sampled_from([0, 4]))
def test_a_batch_of_outcomes_ends_where_one_by_one_ends_and_leaves_its_start_untouched(
    outcomes: list[tuple[list[float], float, bool, Arm]], dimension: int
) -> None:
    """The live path applies a batch to one working copy per model; a replay applies each outcome
    on its own: both must reach the same state, bit for bit, and the state they started from must
    be what it was (workers keep it until the batch's transaction commits). The start already has
    a text model for one arm; every third outcome has no vector; dimension 0 has no text models."""
    config = ln.LearnedConfig(text_dimension=dimension)
    batch = [
        (
            arm,
            ln.features(base, base, base, base, v[0], v[1], v[2]),
            None if i % 3 == 2 else ln.project(v, config, 1 + int(100 * abs(v[3]))),
            y,
        )
        for i, (v, base, y, arm) in enumerate(outcomes)
    ]
    warm = ln.features(0.4, 0.4, 0.4, 0.4, 0.0, 0.0, 0.0)
    start = ln.apply_outcomes(
        ln.initial_state(config), [(Arm("a", "x"), warm, ln.project([1.0] * 8, config), True)], config
    )
    before = learned_rows.store(start)
    start = _read_only(start)
    one_by_one = start
    for arm, feats, phi, y in batch:
        one_by_one = ln.apply_outcomes(one_by_one, [(arm, feats, phi, y)], config)
    assert learned_rows.store(ln.apply_outcomes(start, batch, config)) == learned_rows.store(one_by_one)
    assert learned_rows.store(start) == before


def test_queued_outcomes_taught_a_slice_at_a_time_end_where_one_batch_ends() -> None:
    """The learner teaches a pass's queued outcomes in slices between turns of the event loop; the
    slices must reach the one-batch state bit for bit, project each task's stored vector, leave the
    start untouched, and name as taught exactly the arms whose outcomes had a vector."""
    config = ln.LearnedConfig(text_dimension=4)
    rng = np.random.default_rng(11)
    arms = [Arm("a", "x"), Arm("b", "y"), Arm("c", "z")]
    vectors = {f"t{i}": rng.standard_normal(8) for i in range(9)}  # t9 and t10 have no vector
    lessons = [
        (
            f"t{i % 11}",
            arms[i % 3] if i % 11 < 9 else Arm("d", "w"),
            ln.features(0.5, 0.5, 0.5, 0.5, 0.2, 0.1, -0.3),
            bool(i % 2),
        )
        for i in range(40)
    ]
    start = ln.apply_outcomes(
        ln.initial_state(config),
        [(arms[0], ln.features(0.4, 0.4, 0.4, 0.4, 0, 0, 0), ln.project([1.0] * 8, config), True)],
        config,
    )
    before = learned_rows.store(start)
    update = ln.StateUpdate(start, config)
    for first in range(0, len(lessons), 7):
        update.learn(lessons[first : first + 7], vectors)
    outcomes = [
        (arm, feats, ln.project(vectors[task_id], config) if task_id in vectors else None, y)
        for task_id, arm, feats, y in lessons
    ]
    assert learned_rows.store(update.state()) == learned_rows.store(
        ln.apply_outcomes(start, outcomes, config)
    )
    assert update.taught == set(arms)  # Arm("d", "w") ran only tasks without a vector
    assert learned_rows.store(start) == before


def test_the_updater_takes_the_textbook_step_and_nothing_after_handing_over() -> None:
    rng = np.random.default_rng(6)
    start = ol.prior(5, 0.7, rng.standard_normal(5))
    start_mean = start.mean.copy()
    x, offset = rng.standard_normal(5), 0.3
    p = ol.sigmoid(offset + float(start.mean @ x))
    h = p * (1.0 - p)
    cov = np.linalg.inv(np.linalg.inv(start.cov) + h * np.outer(x, x))  # precision + h x x^T
    mean = start.mean + cov @ x * (1.0 - p)
    updater = ol.Updater(start)
    updater.add(x, True, offset)
    after = updater.state()
    assert np.allclose(after.cov, cov, atol=1e-12)
    assert np.allclose(after.mean, mean, atol=1e-12)
    assert after.count == 1
    assert start.count == 0
    assert np.array_equal(start.mean, start_mean)
    assert np.array_equal(start.cov, np.diag(np.full(5, 0.7)))
    with pytest.raises(RuntimeError, match="handed over"):
        updater.add(x, False, offset)


def test_a_batch_stores_the_shared_models_and_only_the_arms_it_touched() -> None:
    config = ln.LearnedConfig(text_dimension=4)
    other = Arm("reviewer", "large")
    feats = ln.features(0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0)
    phi = ln.project([1.0, 2.0, 3.0, 4.0], config)
    state = ln.apply_outcomes(
        ln.initial_state(config), [(ARM, feats, phi, True), (other, feats, phi, False)], config
    )
    assert set(learned_rows.store(state)) == {
        ("stacker", "", ""),
        ("text_all", "", ""),
        ("text_length", "", ""),
        ("text_arm", ARM.agent, ARM.model),
        ("text_arm", other.agent, other.model),
        ("length_arm", ARM.agent, ARM.model),
        ("length_arm", other.agent, other.model),
    }
    assert set(learned_rows.store(state, [])) == {("stacker", "", "")}  # no outcome taught the text models
    assert set(learned_rows.store(state, [other])) == {
        ("stacker", "", ""),
        ("text_all", "", ""),
        ("text_length", "", ""),
        ("text_arm", other.agent, other.model),
        ("length_arm", other.agent, other.model),
    }
    assert learned_rows.store(learned_rows.restore(learned_rows.store(state), config)) == learned_rows.store(
        state
    )
    assert set(learned_rows.store(ln.initial_state(replace(config, text_length_scale=0.0)))) == {
        ("stacker", "", ""),
        ("text_all", "", ""),
    }


def test_a_stacker_stored_with_fewer_sources_keeps_its_weights_and_gains_the_new_ones_prior() -> None:
    config = ln.LearnedConfig(text_dimension=4)
    fresh = ln.initial_state(config).stacker
    older = len(ln.FEATURES) - 1  # a release before the last source was added
    rng = np.random.default_rng(4)
    learned = ol.LogisticState(rng.standard_normal(older), np.diag(rng.uniform(0.01, 0.1, older)), 37)
    rows = {("stacker", "", ""): (older, learned.count, learned.to_bytes())}
    stacker = learned_rows.restore(rows, config).stacker
    assert stacker.count == 37
    assert np.array_equal(stacker.mean[:older], learned.mean)
    assert np.array_equal(stacker.cov[:older, :older], learned.cov)
    assert stacker.mean[older] == fresh.mean[older] == 1.0  # length_arm's start weight
    assert stacker.cov[older, older] == config.stack_prior_variance
    assert not stacker.cov[older, :older].any() and not stacker.cov[:older, older].any()


def test_stored_models_of_another_text_dimension_start_from_their_priors() -> None:
    old = ln.LearnedConfig(text_dimension=4)
    feats = ln.features(0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0)
    taught = ln.apply_outcomes(
        ln.initial_state(old), [(ARM, feats, ln.project([1.0, 2.0, 3.0, 4.0], old, 200), True)], old
    )
    rows = learned_rows.store(taught)
    wider = replace(old, text_dimension=8)
    state = learned_rows.restore(rows, wider)
    fresh = ln.initial_state(wider)
    assert state.text_all is not None and fresh.text_all is not None
    assert state.text_all.dimension == 8 and state.text_all.count == 0
    assert state.text_arm == {}
    assert state.stacker.count == 1  # the stacker and the length fit whatever the text dimension
    assert state.length == taught.length and set(state.length_arm) == {ARM}
    assert learned_rows.restore(rows, old).text_arm[ARM].count == 1
    oversized = {
        ("stacker", "", ""): (
            len(ln.FEATURES) + 1,
            3,
            bytes(8 * (len(ln.FEATURES) + 1) * (len(ln.FEATURES) + 2)),
        )
    }
    assert learned_rows.restore(oversized, old).stacker.count == 0  # a newer release's: not read


def test_the_updater_hands_over_a_symmetric_state_that_is_stored_and_read_back_exactly() -> None:
    rng = np.random.default_rng(3)
    updater = ol.Updater(ol.prior(5, 0.7))
    for _ in range(40):
        updater.add(rng.standard_normal(5), bool(rng.random() < 0.5), 0.2)
    state = updater.state()
    assert np.array_equal(state.cov, state.cov.T), "the updater works on one triangle and mirrors it"
    back = ol.LogisticState.from_bytes(state.to_bytes(), 5, state.count)
    assert np.array_equal(back.mean, state.mean) and np.array_equal(back.cov, state.cov)
    with pytest.raises(ValueError, match="expected d=5"):
        ol.LogisticState.from_bytes(state.to_bytes()[:-8], 5, 1)
