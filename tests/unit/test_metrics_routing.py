"""Known answers for the routing figures: APGR, oracle, cheapest points, the greedy rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.evaluation import routing as rt
from processors.scheduling.rules import target_key
from processors.scheduling.types import Arm, ArmEstimate

WEAK, STRONG = Arm("a", "weak"), Arm("a", "strong")


def _table(
    success: list[tuple[bool, ...]], cost: list[tuple[float, ...]], arms=(STRONG, WEAK)
) -> rt.TruthTable:
    return rt.TruthTable(tuple(arms), tuple(None for _ in success), tuple(success), tuple(cost))


def test_apgr_of_the_right_the_wrong_and_a_tied_order() -> None:
    weak = [False, True]
    strong = [True, True]
    # right order: x=0 -> 0.5, x=0.5 -> 1, x=1 -> 1; area 0.875; (0.875 - 0.5) / 0.5
    assert rt.apgr_curve([1.0, 0.0], weak, strong).apgr == pytest.approx(0.75)
    # wrong order: x=0.5 -> 0.5; area 0.625
    assert rt.apgr_curve([0.0, 1.0], weak, strong).apgr == pytest.approx(0.25)
    # a tie is evaluated at its ends only, i.e. a random order: the diagonal
    assert rt.apgr_curve([0.3, 0.3], weak, strong).apgr == pytest.approx(0.5)


def test_apgr_on_a_three_task_table_by_hand() -> None:
    weak = [True, False, False]
    strong = [True, True, False]
    # score order: task 1, task 0, task 2. Rates: x=0: 1/3, 1/3: 2/3, 2/3: 2/3, 1: 2/3.
    # Area = 1/3 * (1/3 + 2/3) / 2 + 1/3 * 2/3 + 1/3 * 2/3 = 11/18; APGR = (11/18 - 1/3) / (1/3) = 5/6
    curve = rt.apgr_curve([0.5, 0.9, 0.1], weak, strong)
    assert curve.apgr == pytest.approx(5 / 6)
    assert curve.strong_share == pytest.approx((0.0, 1 / 3, 2 / 3, 1.0))
    assert rt.share_at(curve, 0.5) == pytest.approx(0.5 * (1 / 3))  # halfway up the first segment


def test_apgr_is_undefined_when_both_arms_score_the_same() -> None:
    assert rt.apgr_curve([0.1, 0.2], [True, False], [False, True]).apgr is None


def test_oracle_picks_the_cheapest_success_and_else_the_cheapest_arm() -> None:
    table = _table([(True, True), (True, False), (False, False)], [(10.0, 1.0), (10.0, 1.0), (10.0, 1.0)])
    assert rt.oracle_choices(table) == [1, 0, 1]
    result = rt.score_choices(table, rt.oracle_choices(table), "oracle")
    assert result.success_rate == pytest.approx(2 / 3) and result.total_cost == pytest.approx(12.0)


def test_oracle_at_a_level_gives_up_the_costliest_wins_first() -> None:
    # Wins only the strong arm can get, at strong costs 10, 30 and 20; the weak arm costs 1.
    table = _table([(True, False)] * 3 + [(True, True)], [(10.0, 1.0), (30.0, 1.0), (20.0, 1.0), (5.0, 1.0)])
    choices = rt.oracle_at(table, 0.5)  # 2 of 4 wins are enough
    assert choices == [0, 1, 1, 1]  # gave up the 30 and the 20 wins
    result = rt.score_choices(table, choices, "")
    assert result.success_rate == pytest.approx(0.5) and result.total_cost == pytest.approx(13.0)


def test_single_arm_baselines() -> None:
    # strong: 3/4 at 40; weak: 2/4 at 4; 95% of 0.75 is 0.7125, so only strong qualifies
    table = _table([(True, True), (True, False), (True, True), (False, False)], [(10.0, 1.0)] * 4)
    assert rt.best_single(table) == 0
    assert rt.cheapest_single_within(table, 0.95) == 0
    assert rt.cheapest_single_within(table, 0.6) == 1
    rnd = rt.expected_random(table)
    assert rnd.success_rate == pytest.approx(0.625) and rnd.total_cost == pytest.approx(22.0)
    mix = rt.random_mix_at(table, 0.7)
    assert mix is not None
    assert mix.success_rate == pytest.approx(0.7)
    assert mix.total_cost == pytest.approx(0.8 * 40 + 0.2 * 4)  # w = (0.7 - 0.5) / (0.75 - 0.5)


def test_target_sweep_and_cheapest_point() -> None:
    table = _table([(True, False), (True, True)], [(10.0, 1.0), (10.0, 1.0)])
    probs = [[0.9, 0.3], [0.9, 0.85]]
    costs: list[list[float | None]] = [[10.0, 1.0], [10.0, 1.0]]
    points = {p.target: p for p in rt.target_sweep(table, probs, costs, targets=(0.2, 0.8, 0.95))}
    assert (points[0.2].success_rate, points[0.2].total_cost) == (0.5, 2.0)  # weak everywhere
    assert (points[0.8].success_rate, points[0.8].total_cost) == (1.0, 11.0)  # strong only on task 0
    assert (points[0.95].success_rate, points[0.95].total_cost) == (1.0, 20.0)  # nothing meets: most likely
    best = rt.cheapest_point(list(points.values()), 0.99)
    assert best is not None and best.target == 0.8


_prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_cost = st.one_of(st.none(), st.sampled_from([0.5, 1.0, 2.0, 7.0]))


@given(st.lists(st.tuples(_prob, _cost), min_size=1, max_size=5), st.sampled_from([0.0, 0.5, 0.8, 1.01]))
def test_offline_rule_matches_the_schedulers_rank_key(
    arms: list[tuple[float, float | None]], target: float
) -> None:
    estimates = [
        ArmEstimate(Arm("a", f"m{j}"), p, 0.0, None, c, 0.0, p >= target, 0.0)
        for j, (p, c) in enumerate(arms)
    ]
    expected = min(estimates, key=target_key).arm
    picked = rt.choose([p for p, _ in arms], [c for _, c in arms], target)
    assert estimates[picked].arm == expected


def test_sweep_keeps_picks_that_do_not_depend_on_the_target() -> None:
    table = _table([(True, False), (True, True)], [(10.0, 1.0), (10.0, 1.0)])
    probs = [[0.9, 0.3], [0.9, 0.85]]
    costs: list[list[float | None]] = [[10.0, 1.0], [10.0, 1.0]]
    # Task 0 was a cold start that took the weak arm (tier 1): every target keeps that pick.
    points = rt.target_sweep(table, probs, costs, targets=(0.2, 0.95), fixed=[1, None])
    assert [(p.success_rate, p.total_cost) for p in points] == [(0.5, 2.0), (0.5, 11.0)]
