"""Exploration cost: each exploring schedule against the greedy pick from its own alternatives."""

from __future__ import annotations

from processors.evaluation import routing as rt
from processors.evaluation.exploration_cost import exploration_cost
from processors.evaluation.offline import Prediction
from processors.scheduling.types import Arm

CHEAP, DEAR = Arm("a", "cheap"), Arm("a", "dear")


def _pred(chosen: Arm, exploration: bool) -> Prediction:
    return Prediction(
        chosen=chosen,
        exploration=exploration,
        cold_start=False,
        probabilities={CHEAP: 0.5, DEAR: 0.9},
        costs={CHEAP: 1.0, DEAR: 10.0},
        durations={},
    )


def test_an_exploring_pick_is_charged_against_the_greedy_one() -> None:
    table = rt.TruthTable(
        (CHEAP, DEAR),
        ("k", "k", "k"),
        ((False, True), (True, True), (False, True)),
        ((1.0, 10.0), (1.0, 10.0), (1.0, 10.0)),
    )
    # Target 0.8: the greedy pick is DEAR; tasks 0 and 1 explored CHEAP.
    preds = [_pred(CHEAP, True), _pred(CHEAP, True), _pred(DEAR, False)]
    out = exploration_cost(table, preds, 0.8)
    assert out["explorations"] == 2
    assert out["cost_of_explored_picks_usd"] == 2.0
    assert out["extra_cost_vs_greedy_usd"] == -18.0  # cheaper than greedy
    assert out["success_difference_vs_greedy"] == round(-1 / 3, 4)  # task 0 lost a success
    assert out["extra_cost_share_of_run"] == round(-18.0 / 12.0, 4)
