"""Per-arm estimates: hierarchical shrinkage, neighbour weighting, confidence, duration and cost."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.scheduling import (
    Arm,
    ArmEstimate,
    ArmTotals,
    NeighbourOutcome,
    ProfileAffinity,
    SchedulerConfig,
    SchedulingInput,
    TierOption,
    candidate_arms,
    estimate_arms,
    learned,
    neighbour_evidence,
    neighbour_weight,
)
from processors.scheduling.estimates import fitted_kind_strength

CHEAP = Arm("generalist", "small")
STRONG = Arm("generalist", "large")
CODER = Arm("coder", "small")
TIERS = (
    TierOption("*", 1, CHEAP, 0.001, 4000.0, 0.6),
    TierOption("*", 2, STRONG, 0.05, 20000.0, 0.9),
)
CONFIG = SchedulerConfig()


def outcomes(
    attempts: float, successes: float, duration_ms: float | None = None, cost: float | None = None
) -> ArmTotals:
    return ArmTotals(
        attempts=attempts,
        successes=successes,
        duration_sum_ms=(duration_ms or 0.0) * attempts,
        duration_n=attempts if duration_ms is not None else 0.0,
        cost_sum_usd=(cost or 0.0) * attempts,
        cost_n=attempts if cost is not None else 0.0,
    )


def task(
    *,
    kind: str | None = "k",
    global_stats: Mapping[Arm, ArmTotals] | None = None,
    kind_stats: Mapping[Arm, ArmTotals] | None = None,
    neighbours: Sequence[NeighbourOutcome] = (),
    tiers: Sequence[TierOption] = TIERS,
    requested_agent: str | None = None,
    profiles: Mapping[Arm, ProfileAffinity] | None = None,
    task_id: str = "t-1",
) -> SchedulingInput:
    return SchedulingInput(
        task_id=task_id,
        kind=kind,
        priority=0,
        requested_agent=requested_agent,
        global_stats=global_stats or {},
        kind_stats=kind_stats or {},
        neighbours=neighbours,
        tiers=tiers,
        profiles=profiles or {},
    )


def by_arm(inp: SchedulingInput, config: SchedulerConfig = CONFIG) -> dict[Arm, ArmEstimate]:
    return {e.arm: e for e in estimate_arms(inp, config)}


def test_neighbour_weight_table() -> None:
    sharp = SchedulerConfig(similarity_sharpness=10.0)
    assert neighbour_weight(1.0, sharp) == pytest.approx(1.0)
    assert neighbour_weight(0.9, sharp) == pytest.approx(0.36787944, rel=1e-6)  # exp(10 * -0.1)
    assert neighbour_weight(0.9, CONFIG) == pytest.approx(0.49658530, rel=1e-6)  # default 7: exp(-0.7)
    assert neighbour_weight(-0.1, CONFIG) == 0.0  # below the 0.0 floor
    assert neighbour_weight(float("nan"), CONFIG) == 0.0
    assert neighbour_weight(1.0000001, CONFIG) == pytest.approx(1.0)


@given(a=st.floats(-1, 1), b=st.floats(-1, 1), sharpness=st.floats(0, 50), floor=st.floats(-1, 1))
def test_neighbour_weight_is_monotone_in_similarity(
    a: float, b: float, sharpness: float, floor: float
) -> None:
    config = SchedulerConfig(similarity_sharpness=sharpness, similarity_floor=floor)
    lo, hi = sorted((a, b))
    assert 0.0 <= neighbour_weight(lo, config) <= neighbour_weight(hi, config) <= 1.0


def test_without_evidence_the_tier_prior_and_tier_values_are_used() -> None:
    est = by_arm(task())
    assert est[CHEAP].success_probability == pytest.approx(0.6)
    assert est[CHEAP].predicted_duration_ms == pytest.approx(4000.0)
    assert est[CHEAP].expected_cost_usd == pytest.approx(0.001)
    assert est[CHEAP].confidence == 0.0 and est[CHEAP].evidence == 0.0
    assert est[STRONG].meets_target and not est[CHEAP].meets_target


def test_arm_without_tier_or_data_has_neutral_prior_and_unknown_duration_and_cost() -> None:
    other = Arm("x", "y")
    inp = task(neighbours=[NeighbourOutcome("n1", 0.95, other, ArmTotals())], tiers=())
    est = by_arm(inp)[other]
    assert est.success_probability == pytest.approx(0.5)
    assert est.predicted_duration_ms is None and est.expected_cost_usd is None


def test_kind_shrinks_toward_global_which_shrinks_toward_the_tier_prior() -> None:
    only_global = by_arm(task(global_stats={CHEAP: outcomes(100, 95)}))[CHEAP].success_probability
    assert 0.9 < only_global < 0.95  # global data dominates the 0.6 tier prior
    with_kind = by_arm(task(global_stats={CHEAP: outcomes(100, 95)}, kind_stats={CHEAP: outcomes(50, 10)}))
    assert with_kind[CHEAP].success_probability == pytest.approx((10 + 2 * only_global) / 52)


@given(rate=st.floats(0, 1), n=st.integers(0, 2000))
def test_more_evidence_means_higher_confidence_and_an_estimate_closer_to_the_data(
    rate: float, n: int
) -> None:
    few = by_arm(task(kind_stats={CHEAP: outcomes(n, rate * n)}))[CHEAP]
    many = by_arm(task(kind_stats={CHEAP: outcomes(n + 10, rate * (n + 10))}))[CHEAP]
    assert many.confidence > few.confidence
    assert abs(many.success_probability - rate) <= abs(few.success_probability - rate) + 1e-12


def test_neighbours_move_the_estimate_more_the_more_similar_they_are() -> None:
    def p_with(similarity: float) -> float:
        nb = [NeighbourOutcome(f"n{i}", similarity, CHEAP, outcomes(1, 1)) for i in range(10)]
        return by_arm(task(kind_stats={CHEAP: outcomes(100, 60)}, neighbours=nb))[CHEAP].success_probability

    assert (
        p_with(0.99)
        > p_with(0.9)
        > p_with(0.5)
        > p_with(-0.5)
        == pytest.approx(by_arm(task(kind_stats={CHEAP: outcomes(100, 60)}))[CHEAP].success_probability)
    )


def test_the_task_itself_and_neighbours_beyond_k_carry_no_evidence() -> None:
    config = SchedulerConfig(neighbour_k=1)
    nb = [
        NeighbourOutcome("t-1", 1.0, CHEAP, outcomes(50, 50)),  # the task being scheduled
        NeighbourOutcome("close", 0.95, CHEAP, outcomes(1, 1)),
        NeighbourOutcome("far", 0.9, CHEAP, outcomes(100, 0)),
    ]
    est = by_arm(task(neighbours=nb), config)[CHEAP]
    assert est.evidence == pytest.approx(neighbour_weight(0.95, config))
    assert est.success_probability > 0.6


def test_duration_and_cost_chain_from_tier_to_neighbours() -> None:
    inp = task(
        global_stats={CHEAP: outcomes(100, 60, duration_ms=10_000, cost=0.002)},
        neighbours=[
            NeighbourOutcome(f"n{i}", 1.0, CHEAP, outcomes(1, 1, duration_ms=1000)) for i in range(10)
        ],
    )
    est = by_arm(inp)[CHEAP]
    assert est.expected_cost_usd == pytest.approx((0.2 + 2 * 0.001) / 102)
    global_d = (1_000_000 + 2 * 4000) / 102
    assert est.predicted_duration_ms == pytest.approx((10 * 1000 + 2 * global_d) / 12)


def test_duration_without_tier_value_is_the_plain_mean() -> None:
    arm = Arm("x", "y")
    est = by_arm(task(kind_stats={arm: outcomes(4, 2, duration_ms=500)}, tiers=()))[arm]
    assert est.predicted_duration_ms == pytest.approx(500)


def test_candidates_are_the_kinds_arms_and_the_requested_agent_narrows_them() -> None:
    near = NeighbourOutcome("n", 0.9, Arm("researcher", "large"), outcomes(1, 0))  # weight 0.37
    far = NeighbourOutcome("f", 0.5, Arm("researcher", "small"), outcomes(1, 1))  # weight 0.0067
    inp = task(global_stats={CODER: outcomes(1, 1)}, neighbours=[near, far])
    # An arm known only from other kinds is left out: its global rate says little about this kind;
    # so is an arm seen only on a barely similar task.
    assert set(candidate_arms(inp, CONFIG).arms) == {CHEAP, STRONG, Arm("researcher", "large")}
    assert Arm("researcher", "small") in candidate_arms(inp, SchedulerConfig(candidate_weight=0.0)).arms
    kindless = task(kind=None, global_stats={CODER: outcomes(1, 1)})
    assert CODER in candidate_arms(kindless).arms
    narrowed = candidate_arms(task(global_stats={CODER: outcomes(1, 1)}, requested_agent="coder"))
    assert narrowed.arms == (CODER,) and narrowed.notes == ()
    unknown = candidate_arms(task(requested_agent="nobody"))
    assert set(unknown.arms) == {CHEAP, STRONG}
    assert "nobody" in unknown.notes[0]


def test_profile_affinity_nudges_a_little_and_can_be_switched_off() -> None:
    base = task(kind_stats={CHEAP: outcomes(20, 14)})

    def p(aff: ProfileAffinity | None, config: SchedulerConfig = CONFIG) -> float:
        inp = task(kind_stats={CHEAP: outcomes(20, 14)}, profiles={CHEAP: aff} if aff else None)
        return by_arm(inp, config)[CHEAP].success_probability

    plain = by_arm(base)[CHEAP].success_probability
    like_successes = ProfileAffinity(0.62, 0.52, success_weight=30, failure_weight=30)
    like_failures = ProfileAffinity(0.52, 0.62, success_weight=30, failure_weight=30)
    assert p(like_failures) < plain < p(like_successes)
    assert p(like_successes) - plain < 0.02  # a realistic contrast nudges, it does not override
    assert p(like_successes, SchedulerConfig(use_profiles=False)) == pytest.approx(plain)
    assert p(ProfileAffinity(0.9, None, 30, 0)) == pytest.approx(plain)  # no contrast without both
    thin = ProfileAffinity(0.62, 0.52, success_weight=30, failure_weight=1)
    assert plain < p(thin) < p(like_successes)  # the thinner profile limits the nudge
    # Even an impossible extreme contrast is worth at most profile_weight pseudo-observations.
    extreme = p(ProfileAffinity(1.0, -1.0, 1e9, 1e9))
    assert extreme == pytest.approx((2 * plain + 2.0) / 4.0)


arm_st = st.sampled_from([CHEAP, STRONG, CODER, Arm("r", "m")])
totals_st = st.builds(
    lambda n, s, d, c: ArmTotals(n, s, d, n, c, n),
    st.floats(0, 1e4),
    st.floats(-5, 1e4),  # deliberately inconsistent rows are tolerated
    st.floats(0, 1e7),
    st.floats(0, 100),
)
similarity_st = st.floats(-1.5, 1.5) | st.just(float("nan"))
neighbour_st = st.builds(NeighbourOutcome, st.text(max_size=3), similarity_st, arm_st, totals_st)
profile_st = st.builds(
    ProfileAffinity,
    st.none() | st.floats(-1, 1),
    st.none() | st.floats(-1, 1),
    st.floats(0, 1e4),
    st.floats(0, 1e4),
)


@given(
    global_stats=st.dictionaries(arm_st, totals_st, max_size=4),
    kind_stats=st.dictionaries(arm_st, totals_st, max_size=4),
    neighbours=st.lists(neighbour_st, max_size=8),
    profiles=st.dictionaries(arm_st, profile_st, max_size=4),
    prior_strength=st.floats(0, 50),
    sharpness=st.floats(0, 50),
)
def test_estimates_are_always_probabilities(
    global_stats: dict[Arm, ArmTotals],
    kind_stats: dict[Arm, ArmTotals],
    neighbours: list[NeighbourOutcome],
    profiles: dict[Arm, ProfileAffinity],
    prior_strength: float,
    sharpness: float,
) -> None:
    config = SchedulerConfig(prior_strength=prior_strength, similarity_sharpness=sharpness)
    inp = task(global_stats=global_stats, kind_stats=kind_stats, neighbours=neighbours, profiles=profiles)
    for e in estimate_arms(inp, config):
        assert 0.0 <= e.success_probability <= 1.0
        assert 0.0 <= e.confidence <= 1.0
        assert e.evidence >= 0.0
        assert e.predicted_duration_ms is None or e.predicted_duration_ms >= 0.0
        assert e.meets_target == (e.success_probability >= config.success_target)


def test_no_difficulty_shift_when_it_is_turned_off() -> None:
    nb = [NeighbourOutcome(f"n{i}", 0.95, STRONG, outcomes(1, 0)) for i in range(5)]
    inp = task(kind_stats={CHEAP: outcomes(40, 30), STRONG: outcomes(40, 36)}, neighbours=nb)
    off = by_arm(inp, SchedulerConfig(difficulty_sd=0.0))[CHEAP]
    plain = by_arm(task(kind_stats={CHEAP: outcomes(40, 30), STRONG: outcomes(40, 36)}))[CHEAP]
    assert off.success_probability == pytest.approx(plain.success_probability)


def test_other_arms_failing_on_similar_tasks_makes_a_task_look_harder_for_every_arm() -> None:
    config = SchedulerConfig(difficulty_sd=1.0)
    kind = {CHEAP: outcomes(40, 30), STRONG: outcomes(40, 36)}
    base = by_arm(task(kind_stats=kind), config)[CHEAP].success_probability
    failed = [NeighbourOutcome(f"n{i}", 0.95, STRONG, outcomes(1, 0)) for i in range(5)]
    succeeded = [NeighbourOutcome(f"n{i}", 0.95, STRONG, outcomes(1, 1)) for i in range(5)]
    harder = by_arm(task(kind_stats=kind, neighbours=failed), config)[CHEAP].success_probability
    easier = by_arm(task(kind_stats=kind, neighbours=succeeded), config)[CHEAP].success_probability
    # CHEAP has no neighbour outcome of its own: only the strong arm's outcomes moved it.
    assert harder < base < easier


def test_the_shift_of_an_arm_ignores_its_own_neighbour_outcomes() -> None:
    from processors.scheduling.estimates import difficulty_shift

    config = SchedulerConfig(difficulty_sd=1.0, similarity_sharpness=10.0)
    nb = [NeighbourOutcome(f"n{i}", 0.95, CHEAP, outcomes(1, 0)) for i in range(5)]
    shift = difficulty_shift(task(neighbours=nb), config, {CHEAP: 0.7, STRONG: 0.9})
    assert shift[CHEAP] == 0.0  # only its own outcomes: they enter as Beta evidence instead
    assert shift[STRONG] < 0.0
    # Newton step: 5 w (0 - 0.7) / (5 w 0.7 0.3 + 1), w = exp(10 (0.95 - 1))
    w = 0.6065306597
    assert shift[STRONG] == pytest.approx(5 * w * -0.7 / (5 * w * 0.21 + 1.0))


neighbour_rows = st.lists(
    st.builds(
        NeighbourOutcome,
        task_id=st.sampled_from([f"n{i}" for i in range(8)]),
        similarity=st.floats(min_value=0.5, max_value=1.0),
        arm=st.sampled_from([CHEAP, STRONG, CODER]),
        totals=st.builds(
            outcomes,
            attempts=st.floats(min_value=0, max_value=50),
            successes=st.floats(min_value=0, max_value=50),
            duration_ms=st.floats(min_value=0, max_value=1e6),
            cost=st.floats(min_value=0, max_value=10),
        ),
    ),
    max_size=20,
)


@given(neighbour_rows, st.randoms(use_true_random=False))
def test_neighbour_evidence_is_the_weighted_sum_in_any_order(rows: list[NeighbourOutcome], rng) -> None:
    config = SchedulerConfig(neighbour_k=50)
    evidence = neighbour_evidence(task(neighbours=rows), config)
    shuffled = list(rows)
    rng.shuffle(shuffled)
    assert neighbour_evidence(task(neighbours=shuffled), config) == evidence  # bit-identical
    for arm in {r.arm for r in rows}:
        mine = [r for r in rows if r.arm == arm and neighbour_weight(r.similarity, config) > 0]
        expected = sum(r.totals.successes * neighbour_weight(r.similarity, config) for r in mine)
        got = evidence[arm].successes if mine else 0.0
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-9)


def _fitted(kind_stats: Mapping[Arm, ArmTotals]) -> float:
    global_rates = dict.fromkeys((CHEAP, STRONG, CODER), 0.5)  # each arm's rate over all tasks
    return fitted_kind_strength(kind_stats, global_rates, 2.0)


def test_the_fitted_kind_strength_is_heavy_until_the_kind_strays_beyond_noise() -> None:
    heavy = 2.0 * learned.HEAVY_KIND_SHRINKAGE
    assert _fitted({}) == heavy  # no outcomes on the kind: trust it least
    # rates at the global rate, within binomial noise: nothing to fit, the heaviest shrinkage
    assert _fitted({CHEAP: outcomes(40, 20), STRONG: outcomes(40, 21), CODER: outcomes(40, 19)}) == heavy
    # every arm far from its global rate on this kind: as light as the per-kind base rate
    assert _fitted({CHEAP: outcomes(40, 36), STRONG: outcomes(40, 4), CODER: outcomes(40, 38)}) == 2.0
    # a moderate spread lands in between, and more of the same spread fits a lighter shrinkage
    some = _fitted({CHEAP: outcomes(40, 28), STRONG: outcomes(40, 12), CODER: outcomes(40, 20)})
    more = _fitted({CHEAP: outcomes(80, 56), STRONG: outcomes(80, 24), CODER: outcomes(80, 40)})
    assert 2.0 < more < some < heavy
