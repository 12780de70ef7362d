"""A dataset that carries its ground truth gets the true probabilities scored beside tasksage and
the base rates: the floor every score is read against. Known answers, worked by hand."""

from __future__ import annotations

import math

import orjson
import pytest

from processors.evaluation.dataset import parse_dataset
from processors.evaluation.offline import OfflineOptions, replay_offline, visible_prefix
from processors.evaluation.report import build_report, truth_pairs
from processors.evaluation.runs import TRUE_PROBABILITIES, RunRecord, revealed_for
from processors.scheduling.types import Arm, SchedulerConfig

CHEAP, DEAR = Arm("coder", "small"), Arm("coder", "large")
CHEAP_SUCCESS = (True, False, True, False)  # truth 0.5
DEAR_SUCCESS = (True, True, True, False)  # truth 0.9


def _lines(with_truth: bool) -> list[bytes]:
    out = []
    for i, (cheap, dear) in enumerate(zip(CHEAP_SUCCESS, DEAR_SUCCESS, strict=True)):
        doc: dict[str, object] = {
            "task": {"task_id": f"T{i}", "description": f"task {i}", "kind": "k"},
            "outcomes": [
                {"agent": "coder", "model": "small", "success": cheap, "cost_usd": 0.01},
                {"agent": "coder", "model": "large", "success": dear, "cost_usd": 1.0},
            ],
        }
        if with_truth:
            doc["truth"] = {"coder/small": 0.5, "coder/large": 0.9}
        out.append(orjson.dumps(doc))
    return out


def _report(with_truth: bool, feedback: str) -> tuple[dict[str, object], list[Arm]]:
    """The report of a replay, and the arm each task went to."""
    data = parse_dataset(_lines(with_truth))
    config = SchedulerConfig(use_profiles=False, exploration_rate=0.0)
    visible = visible_prefix(len(data.tasks), 0)
    preds = replay_offline(data, config, OfflineOptions(neighbours=False, feedback=feedback), visible)  # type: ignore[arg-type]
    chosen = [p.chosen for p in preds]
    run = RunRecord("main", 0.8, feedback, tuple(preds), tuple(visible), revealed_for(data, feedback, chosen))  # type: ignore[arg-type]
    return build_report(data, config, [run]), chosen


def test_truth_pairs_follow_the_listed_arms_and_skip_missing_outcomes() -> None:
    data = parse_dataset(_lines(True))
    ps, ys = truth_pairs(data, [[CHEAP], [DEAR], [CHEAP, DEAR], [Arm("coder", "medium")]])
    assert ps == [0.5, 0.9, 0.5, 0.9]
    assert ys == [True, True, True, True]


def test_the_true_probabilities_are_scored_on_all_arms_with_known_answers() -> None:
    scores = _report(True, "full")[0]["probabilities"]["all_arms"][TRUE_PROBABILITIES]  # type: ignore[index]
    assert scores["pairs"] == 8
    # cheap arm: four misses of 0.5 each; dear arm: three of 0.1 and one of 0.9
    assert scores["brier"] == pytest.approx((4 * 0.25 + 3 * 0.01 + 0.81) / 8, abs=1e-4)
    assert scores["log_loss"] == pytest.approx(
        (4 * math.log(2) - 3 * math.log(0.9) - math.log(0.1)) / 8, abs=1e-4
    )
    # the 0.5 bin is exact; the 0.9 bin holds half the pairs and saw 0.75
    assert scores["ece"] == pytest.approx(0.5 * 0.15, abs=1e-4)


def test_the_chosen_arm_scope_scores_the_truth_of_the_arm_each_task_went_to() -> None:
    report, chosen = _report(True, "bandit")
    scores = report["probabilities"]["chosen_arm"][TRUE_PROBABILITIES]  # type: ignore[index]
    truth = {CHEAP: 0.5, DEAR: 0.9}
    successes = [
        dict(zip((CHEAP, DEAR), pair, strict=True)) for pair in zip(CHEAP_SUCCESS, DEAR_SUCCESS, strict=True)
    ]
    assert scores["pairs"] == 4
    assert scores["mean_prediction"] == pytest.approx(sum(truth[a] for a in chosen) / 4, abs=1e-4)
    assert scores["observed_rate"] == pytest.approx(
        sum(s[a] for s, a in zip(successes, chosen, strict=True)) / 4, abs=1e-4
    )


def test_a_dataset_without_truth_has_no_truth_row() -> None:
    for feedback in ("full", "bandit"):
        report, _ = _report(False, feedback)
        for scope in ("all_arms", "chosen_arm"):
            assert TRUE_PROBABILITIES not in report["probabilities"][scope]  # type: ignore[index]
