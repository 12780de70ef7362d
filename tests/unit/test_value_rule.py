"""The value rule: each task gets the arm with the highest p * value - cost (processors/scheduling/rules.py),
in the scheduler, its exploration and the evaluator's offline re-application."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from processors.evaluation import routing as rt
from processors.scheduling import Arm, ArmEstimate, SchedulerConfig, SchedulingInput, TierOption, decide
from processors.scheduling.exploration import explore
from processors.scheduling.rules import arm_score, expected_value, rank_key, value_key
from processors.statistics import ArmTotals
from streams.settings import Settings

CHEAP = Arm("coder", "small")
MIDDLE = Arm("coder", "medium")
STRONG = Arm("coder", "large")
TIERS = (
    TierOption("*", 1, CHEAP, 0.01, None, 0.5),
    TierOption("*", 2, MIDDLE, 0.10, None, 0.5),
    TierOption("*", 3, STRONG, 1.00, None, 0.5),
)


def totals(attempts: int, successes: int, cost: float) -> ArmTotals:
    return ArmTotals(attempts, successes, 0.0, 0.0, cost * attempts, attempts)


# A thousand outcomes per arm: estimates close to 0.60 / 0.80 / 0.95 at 0.01 / 0.10 / 1.00 dollars.
STATS = {CHEAP: totals(1000, 600, 0.01), MIDDLE: totals(1000, 800, 0.10), STRONG: totals(1000, 950, 1.00)}


def chosen(value: float | None, target: float = 0.9) -> Arm:
    config = SchedulerConfig(success_target=target, success_value_usd=value, exploration_rate=0.0)
    inp = SchedulingInput("t-1", None, 0, None, STATS, {}, (), TIERS)
    return decide(inp, config).chosen.arm


def test_the_value_of_a_success_sets_how_much_an_arm_may_cost() -> None:
    # Worth per arm at value v: 0.6v - 0.01, 0.8v - 0.1, 0.95v - 1.
    # The middle arm overtakes the cheap one above v = 0.45, the strong one overtakes it above v = 6.
    assert chosen(0.3) == CHEAP
    assert chosen(1.0) == MIDDLE
    assert chosen(5.0) == MIDDLE
    assert chosen(7.0) == STRONG
    # The target rule on the same estimates: the cheapest arm meeting 0.9 is the strong one.
    assert chosen(None, target=0.9) == STRONG
    assert chosen(None, target=0.7) == MIDDLE


def test_scores_are_expected_values_and_order_the_alternatives() -> None:
    config = SchedulerConfig(success_value_usd=2.0, exploration_rate=0.0)
    d = decide(SchedulingInput("t-1", None, 0, None, STATS, {}, (), TIERS), config)
    for e in d.alternatives:
        assert e.score == expected_value(e.success_probability, e.expected_cost_usd, 2.0)
    assert [e.score for e in d.alternatives] == sorted((e.score for e in d.alternatives), reverse=True)
    assert list(d.alternatives) == sorted(d.alternatives, key=rank_key(config))


def test_an_unknown_cost_counts_as_the_whole_value() -> None:
    assert expected_value(0.9, None, 2.0) == 0.9 * 2.0 - 2.0
    priced = ArmEstimate(CHEAP, 0.5, 0.5, None, 0.2, 10.0, False, expected_value(0.5, 0.2, 1.0))
    unpriced = ArmEstimate(STRONG, 0.99, 0.5, None, None, 10.0, True, expected_value(0.99, None, 1.0))
    assert min((unpriced, priced), key=value_key) == priced  # 0.3 against -0.01
    losing = ArmEstimate(CHEAP, 0.1, 0.5, None, 2.0, 10.0, False, expected_value(0.1, 2.0, 1.0))
    assert min((unpriced, losing), key=value_key) == unpriced  # -0.01 against -1.9


def test_the_target_rule_scores_are_unchanged() -> None:
    config = SchedulerConfig(success_target=0.8)
    assert arm_score(0.9, 1.0, config) == 1.5
    assert arm_score(0.9, None, config) == 1.0
    assert arm_score(0.7, 1.0, config) == 0.7


def test_optimism_tries_an_arm_whose_optimistic_value_beats_the_greedy_one() -> None:
    config = SchedulerConfig(success_value_usd=1.0, exploration_rate=1e-9, optimism_z=1.0)
    known = ArmEstimate(MIDDLE, 0.80, 0.9, None, 0.10, 1000.0, False, expected_value(0.80, 0.10, 1.0))
    # Two outcomes: posterior sd about 0.26, so its optimistic value 0.86 - 0.01 beats 0.70.
    fresh = ArmEstimate(CHEAP, 0.60, 0.1, None, 0.01, 2.0, False, expected_value(0.60, 0.01, 1.0))
    picked = explore("t-1", [known, fresh], known, config)
    assert picked is not None and picked[0].arm == CHEAP and "optimistic value" in picked[1]
    # Known as well as the greedy arm, the cheap arm's bound no longer reaches: stay greedy.
    settled = ArmEstimate(CHEAP, 0.60, 0.9, None, 0.01, 1000.0, False, expected_value(0.60, 0.01, 1.0))
    assert explore("t-1", [known, settled], known, config) is None


_prob = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)
_cost = st.one_of(st.none(), st.sampled_from([0.001, 0.5, 1.0, 7.0]))


@given(
    st.lists(st.tuples(_prob, _cost), min_size=1, max_size=6),
    st.sampled_from([0.01, 1.0, 3.0, 100.0]),
)
def test_the_evaluator_applies_the_schedulers_value_rule(
    arms: list[tuple[float, float | None]], value: float
) -> None:
    estimates = [
        ArmEstimate(Arm("a", f"m{j}"), p, 0.0, None, c, 0.0, False, expected_value(p, c, value))
        for j, (p, c) in enumerate(arms)
    ]
    best = min(estimates, key=value_key)
    picked = rt.choose_by_value([p for p, _ in arms], [c for _, c in arms], value)
    assert estimates[picked].score == best.score
    assert estimates[picked].arm == best.arm


def _table(success: list[tuple[bool, ...]], cost: list[tuple[float, ...]]) -> rt.TruthTable:
    return rt.TruthTable(arms=(CHEAP, STRONG), kinds=("k",) * len(success), success=success, cost=cost)


def test_the_value_sweep_scores_each_value_on_the_truth() -> None:
    table = _table([(True, True), (False, True)], [(1.0, 10.0), (1.0, 10.0)])
    probs = [[0.9, 0.95], [0.5, 0.95]]
    costs: list[list[float | None]] = [[1.0, 10.0], [1.0, 10.0]]
    # value 1: cheap everywhere; value 30: the strong arm where it adds 0.45 for 9 dollars (task 1
    # only, 0.45 * 30 = 13.5 > 9); value 1000: the strong arm everywhere.
    points = rt.value_sweep(table, probs, costs, values=(1.0, 30.0, 1000.0))
    assert [(p.target, p.success_rate, p.total_cost, p.rule) for p in points] == [
        (1.0, 0.5, 2.0, "value"),
        (30.0, 1.0, 11.0, "value"),
        (1000.0, 1.0, 20.0, "value"),
    ]
    fixed = rt.value_sweep(table, probs, costs, values=(1000.0,), fixed=[0, None])
    assert (fixed[0].success_rate, fixed[0].total_cost) == (1.0, 11.0)


def test_the_setting_switches_the_scheduler_to_the_value_rule(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().scheduler_config().success_value_usd is None  # the target rule by default
    monkeypatch.setenv("TASKSAGE_SUCCESS_VALUE_USD", "2.5")
    assert Settings().scheduler_config().success_value_usd == 2.5
    monkeypatch.setenv("TASKSAGE_SUCCESS_VALUE_USD", "0")
    with pytest.raises(ValidationError, match="success_value_usd"):
        Settings()
