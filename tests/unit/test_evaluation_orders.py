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
    feedback: str,
    ours: tuple[float, float],
    per_arm: tuple[float, float],
    per_kind: tuple[float, float],
    ece: tuple[float, float] = (0.01, 0.01),
    truth_ece: float | None = None,
    apgr: float | None = None,
) -> dict[str, Any]:
    """A report's scores: (Brier, log loss) of tasksage and both base rates; ECE of tasksage and
    the per-arm base rate; the ground truth's ECE if the dataset has it."""

    def scores(brier: float, log_loss: float, ece: float = 0.02) -> dict[str, float]:
        return {"brier": brier, "log_loss": log_loss, "ece": ece}

    scope = {
        "tasksage": scores(*ours, ece[0]),
        "base rates (per agent/model)": scores(*per_arm, ece[1]),
        "base rates per kind": scores(*per_kind),
    }
    if truth_ece is not None:
        scope["true probabilities"] = scores(0.1, 0.3, truth_ece)
    other = {name: scores(1.0, 1.0, 0.5) for name in scope}
    probabilities = (
        {"all_arms": scope, "chosen_arm": other}
        if feedback == "full"
        else {"all_arms": other, "chosen_arm": scope}
    )
    report: dict[str, Any] = {"run": {"feedback": feedback}, "probabilities": probabilities}
    if apgr is not None:
        report["two_arm"] = {"apgr": {"tasksage": apgr, "random": 0.5}}
    return report


def test_the_gap_is_taken_against_the_best_base_rate_of_each_score_on_the_judged_scope() -> None:
    # Brier: per kind is best (0.2); log loss: per arm is best (0.5).
    gaps = score_gaps(_report("full", (0.21, 0.55), (0.25, 0.5), (0.2, 0.6)))
    assert gaps["scope"] == "all_arms"
    assert gaps["best_base_rate_brier"] == 0.2 and gaps["brier_gap"] == pytest.approx(0.05)
    assert gaps["best_base_rate_log_loss"] == 0.5 and gaps["log_loss_gap"] == pytest.approx(0.1)
    bandit = score_gaps(_report("bandit", (0.18, 0.45), (0.2, 0.5), (0.2, 0.5)))
    assert bandit["scope"] == "chosen_arm" and bandit["brier_gap"] == pytest.approx(-0.1)


def test_ece_is_held_against_the_per_arm_base_rate_as_a_difference_with_the_truth_beside_it() -> None:
    gaps = score_gaps(
        _report("full", (0.2, 0.5), (0.2, 0.5), (0.2, 0.5), ece=(0.009, 0.005), truth_ece=0.006)
    )
    assert (gaps["ece"], gaps["per_arm_ece"], gaps["true_probabilities_ece"]) == (0.009, 0.005, 0.006)
    assert gaps["ece_gap"] == pytest.approx(0.004)
    without_truth = score_gaps(_report("bandit", (0.2, 0.5), (0.2, 0.5), (0.2, 0.5), ece=(0.01, 0.02)))
    assert without_truth["true_probabilities_ece"] is None
    assert without_truth["ece_gap"] == pytest.approx(-0.01)


def test_the_summary_lists_every_order_with_mean_least_and_greatest() -> None:
    gaps = [score_gaps(_report("full", (b, 0.5), (0.2, 0.5), (0.2, 0.5))) for b in (0.201, 0.2, 0.204)]
    summary = order_summary(gaps, [None, 1, 2])
    assert summary["orders"] == 3 and summary["scope"] == "all_arms"
    assert [o["seed"] for o in summary["per_order"]] == [None, 1, 2]
    assert summary["brier_gap"]["mean"] == pytest.approx((0.005 + 0.0 + 0.02) / 3)
    assert summary["brier_gap"]["min"] == pytest.approx(0.0)
    assert summary["brier_gap"]["max"] == pytest.approx(0.02)
    assert summary["log_loss_gap"] == {"mean": 0.0, "min": 0.0, "max": 0.0}
    assert summary["ece_gap"] == {"mean": 0.0, "min": 0.0, "max": 0.0}
    with pytest.raises(ValueError, match="one seed per order"):
        order_summary(gaps, [None])


def test_the_printed_table_has_one_row_per_order_then_the_spread() -> None:
    gaps = [
        score_gaps(_report("bandit", (b, 0.5), (0.2, 0.5), (0.2, 0.5), ece=(e, 0.01), truth_ece=0.008))
        for b, e in ((0.202, 0.012), (0.198, 0.011))
    ]
    table = orders_table({"orders": order_summary(gaps, [None, 1])})
    assert table is not None and "2 orders, scored on chosen arm" in table.title
    assert [row[0] for row in table.rows] == ["file order", "shuffle, seed 1", "mean", "min", "max"]
    assert [row[3] for row in table.rows] == ["+1.00%", "-1.00%", "+0.00%", "-1.00%", "+1.00%"]
    assert [row[9] for row in table.rows] == ["+0.0020", "+0.0010", "+0.0015", "+0.0010", "+0.0020"]
    assert [row[10] for row in table.rows[:2]] == ["0.0080", "0.0080"]
    assert orders_table({}) is None


def test_two_arm_datasets_get_the_apgr_of_every_order_and_its_spread() -> None:
    gaps = [
        score_gaps(_report("full", (0.2, 0.5), (0.2, 0.5), (0.2, 0.5), apgr=a)) for a in (0.54, 0.5, 0.58)
    ]
    summary = order_summary(gaps, [None, 1, 2])
    assert [o["apgr"] for o in summary["per_order"]] == [0.54, 0.5, 0.58]
    assert summary["apgr"] == {"mean": pytest.approx(0.54), "min": 0.5, "max": 0.58}
    table = orders_table({"orders": summary})
    assert table is not None and table.header[-1] == "APGR"
    assert [row[-1] for row in table.rows] == ["0.540", "0.500", "0.580", "0.540", "0.500", "0.580"]
    many_arms = [score_gaps(_report("full", (0.2, 0.5), (0.2, 0.5), (0.2, 0.5)))]
    plain = orders_table({"orders": order_summary(many_arms, [None])})
    assert plain is not None and "APGR" not in plain.header


def test_a_report_written_before_ece_and_apgr_were_kept_still_prints() -> None:
    old = {
        "orders": 1,
        "scope": "all_arms",
        "per_order": [
            {
                "seed": None,
                "brier": 0.2,
                "best_base_rate_brier": 0.2,
                "brier_gap": 0.0,
                "log_loss": 0.5,
                "best_base_rate_log_loss": 0.5,
                "log_loss_gap": 0.0,
            }
        ],
        "brier_gap": {"mean": 0.0, "min": 0.0, "max": 0.0},
        "log_loss_gap": {"mean": 0.0, "min": 0.0, "max": 0.0},
    }
    table = orders_table({"orders": old})
    assert table is not None and "APGR" not in table.header
    assert table.rows[0][7:] == ("-", "-", "-", "-")
    assert [row[9] for row in table.rows[1:]] == ["-", "-", "-"]
