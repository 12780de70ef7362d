"""The order spread of `evaluate --offline --orders`: seeded shuffles and the gap arithmetic."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.evaluation.dataset import Dataset, parse_dataset
from processors.evaluation.orders import order_summary, score_gaps, shuffled
from processors.evaluation.tables import orders_table


def _dataset(n: int) -> Dataset:
    lines = [
        orjson.dumps(
            {
                "task": {"task_id": f"t{i}", "description": f"task {i}", "kind": "code"},
                "outcomes": [{"agent": "coder", "model": "small", "success": i % 2 == 0}],
            }
        )
        for i in range(n)
    ]
    return parse_dataset(lines)


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=10_000))
def test_a_shuffle_keeps_every_task_once_and_time_running_forward(n: int, seed: int) -> None:
    data = _dataset(n)
    order, permutation = shuffled(data, seed)
    assert sorted(permutation) == list(range(n))
    assert [t.task.task_id for t in order.tasks] == [data.tasks[i].task.task_id for i in permutation]
    assert [t.outcomes for t in order.tasks] == [data.tasks[i].outcomes for i in permutation]
    assert [t.task.occurred_at for t in order.tasks] == [t.task.occurred_at for t in data.tasks]
    assert order.header == data.header


def test_a_shuffle_is_fixed_by_its_seed_and_differs_between_seeds() -> None:
    data = _dataset(30)
    assert shuffled(data, 1)[1] == shuffled(data, 1)[1]
    assert shuffled(data, 1)[1] != shuffled(data, 2)[1]


def _report(
    feedback: str, ours: tuple[float, float], per_arm: tuple[float, float], per_kind: tuple[float, float]
) -> dict[str, Any]:
    def scores(brier: float, log_loss: float) -> dict[str, float]:
        return {"brier": brier, "log_loss": log_loss}

    scope = {
        "tasksage": scores(*ours),
        "base rates (per agent/model)": scores(*per_arm),
        "base rates per kind": scores(*per_kind),
    }
    other = {name: scores(1.0, 1.0) for name in scope}
    probabilities = (
        {"all_arms": scope, "chosen_arm": other}
        if feedback == "full"
        else {"all_arms": other, "chosen_arm": scope}
    )
    return {"run": {"feedback": feedback}, "probabilities": probabilities}


def test_the_gap_is_taken_against_the_best_base_rate_of_each_score_on_the_judged_scope() -> None:
    # Brier: per kind is best (0.2); log loss: per arm is best (0.5).
    gaps = score_gaps(_report("full", (0.21, 0.55), (0.25, 0.5), (0.2, 0.6)))
    assert gaps["scope"] == "all_arms"
    assert gaps["best_base_rate_brier"] == 0.2 and gaps["brier_gap"] == pytest.approx(0.05)
    assert gaps["best_base_rate_log_loss"] == 0.5 and gaps["log_loss_gap"] == pytest.approx(0.1)
    bandit = score_gaps(_report("bandit", (0.18, 0.45), (0.2, 0.5), (0.2, 0.5)))
    assert bandit["scope"] == "chosen_arm" and bandit["brier_gap"] == pytest.approx(-0.1)


def test_the_summary_lists_every_order_with_mean_least_and_greatest() -> None:
    gaps = [score_gaps(_report("full", (b, 0.5), (0.2, 0.5), (0.2, 0.5))) for b in (0.201, 0.2, 0.204)]
    summary = order_summary(gaps, [None, 1, 2])
    assert summary["orders"] == 3 and summary["scope"] == "all_arms"
    assert [o["seed"] for o in summary["per_order"]] == [None, 1, 2]
    assert summary["brier_gap"]["mean"] == pytest.approx((0.005 + 0.0 + 0.02) / 3)
    assert summary["brier_gap"]["min"] == pytest.approx(0.0)
    assert summary["brier_gap"]["max"] == pytest.approx(0.02)
    assert summary["log_loss_gap"] == {"mean": 0.0, "min": 0.0, "max": 0.0}
    with pytest.raises(ValueError, match="one seed per order"):
        order_summary(gaps, [None])


def test_the_printed_table_has_one_row_per_order_then_the_spread() -> None:
    gaps = [score_gaps(_report("bandit", (b, 0.5), (0.2, 0.5), (0.2, 0.5))) for b in (0.202, 0.198)]
    table = orders_table({"orders": order_summary(gaps, [None, 1])})
    assert table is not None and "2 orders, scored on chosen arm" in table.title
    assert [row[0] for row in table.rows] == ["file order", "shuffle, seed 1", "mean", "min", "max"]
    assert [row[3] for row in table.rows] == ["+1.00%", "-1.00%", "+0.00%", "-1.00%", "+1.00%"]
    assert orders_table({}) is None
