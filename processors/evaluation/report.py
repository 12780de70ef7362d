"""Assemble the evaluation report (a JSON-ready dict) from replay records. Pure.

Sections: probabilities (Brier, log loss, AUC, ECE against base-rate predictors fed the same
outcomes, and against the ground truth where the dataset carries it), calibration bins, duration
MAE, routing (the run and every baseline on the ground truth), the 95% point, the success-target
sweep, two-arm figures (APGR, cost saving) and ablations.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from processors.evaluation import metrics
from processors.evaluation import routing as rt
from processors.evaluation.dataset import Dataset, arm_name
from processors.evaluation.exploration_cost import exploration_cost
from processors.evaluation.offline import Prediction
from processors.evaluation.report_routing import (
    LEVEL_FRACTION,
    choices_of,
    point_row,
    rounded,
    routing_section,
    sweep_of,
)
from processors.evaluation.runs import (
    PER_ARM_BASELINE,
    PER_KIND_BASELINE,
    TRUE_PROBABILITIES,
    RunRecord,
    base_rate_predictions,
)
from processors.scheduling.types import Arm, SchedulerConfig


def _scores(s: metrics.ProbabilityScores) -> dict[str, Any]:
    return {
        "pairs": s.count,
        "brier": rounded(s.brier),
        "log_loss": rounded(s.log_loss),
        "auc": rounded(s.auc),
        "ece": rounded(s.ece),
        "ece_if_calibrated": rounded(s.ece_if_calibrated),
        "mean_prediction": rounded(s.mean_prediction),
        "observed_rate": rounded(s.observed_rate),
    }


def _pairs(
    dataset: Dataset, probabilities: Sequence[Mapping[Arm, float]], arms_of: Sequence[Sequence[Arm]]
) -> tuple[list[float], list[bool]]:
    ps: list[float] = []
    ys: list[bool] = []
    for item, probs, arms in zip(dataset.tasks, probabilities, arms_of, strict=True):
        for arm in arms:
            outcome = item.outcome(arm)
            if outcome is not None and arm in probs:
                ps.append(probs[arm])
                ys.append(outcome.success)
    return ps, ys


def prediction_pairs(
    dataset: Dataset, preds: Sequence[Prediction], arms_of: Sequence[Sequence[Arm]]
) -> tuple[list[float], list[bool]]:
    """(probability, outcome) for each task's listed arms that have both."""
    return _pairs(dataset, [p.probabilities for p in preds], arms_of)


def truth_pairs(dataset: Dataset, arms_of: Sequence[Sequence[Arm]]) -> tuple[list[float], list[bool]]:
    """(true probability, outcome) for each task's listed arms: the synthetic ground truth scored like
    a predictor. No estimator can expect to beat its Brier or log loss, and its ECE is the sampling
    floor of a perfectly calibrated forecaster on these very pairs."""
    return _pairs(dataset, [item.truth for item in dataset.tasks], arms_of)


def _bins(ps: Sequence[float], ys: Sequence[bool]) -> list[dict[str, Any]]:
    return [
        {
            "lower": b.lower,
            "upper": b.upper,
            "count": b.count,
            "mean_prediction": rounded(b.mean_prediction),
            "observed_rate": rounded(b.observed_rate),
        }
        for b in metrics.calibration_bins(ps, ys)
    ]


def _duration_mae(
    dataset: Dataset, preds: Sequence[Prediction], arms_of: Sequence[Sequence[Arm]]
) -> float | None:
    predicted: list[float | None] = []
    actual: list[float | None] = []
    for item, pred, arms in zip(dataset.tasks, preds, arms_of, strict=True):
        for arm in arms:
            outcome = item.outcome(arm)
            if outcome is not None:
                predicted.append(pred.durations.get(arm))
                actual.append(outcome.duration_ms)
    return metrics.mean_absolute_error(predicted, actual)


def build_report(
    dataset: Dataset,
    config: SchedulerConfig,
    runs: Sequence[RunRecord],
    ablations: Sequence[RunRecord] = (),
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """runs[0] is the main run; further runs are the same replay at other success targets."""
    if not runs:
        raise ValueError("at least one run is needed")
    main = runs[0]
    main_config = dataclasses.replace(
        config, success_target=main.success_target, success_value_usd=main.success_value_usd
    )
    chosen_arms = [[p.chosen] for p in main.predictions]
    all_arms = [[o.arm for o in item.outcomes] for item in dataset.tasks]
    base_global = base_rate_predictions(dataset, main_config, main, per_kind=False)
    base_kind = base_rate_predictions(dataset, main_config, main, per_kind=True)

    probabilities: dict[str, Any] = {}
    for scope, arms_of in (("chosen_arm", chosen_arms), ("all_arms", all_arms)):
        probabilities[scope] = {
            name: _scores(metrics.probability_scores(*prediction_pairs(dataset, preds, arms_of)))
            for name, preds in (
                ("tasksage", main.predictions),
                (PER_ARM_BASELINE, base_global),
                (PER_KIND_BASELINE, base_kind),
            )
        }
        if dataset.has_truth:
            probabilities[scope][TRUE_PROBABILITIES] = _scores(
                metrics.probability_scores(*truth_pairs(dataset, arms_of))
            )
    calibration_scope = all_arms if main.feedback == "full" else chosen_arms
    report: dict[str, Any] = {
        "dataset": _dataset_section(dataset),
        "run": {
            **(meta or {}),
            "feedback": main.feedback,
            "success_target": main.success_target,
            "success_value_usd": main.success_value_usd,
            "tasks": len(main.predictions),
            "seconds": rounded(main.seconds, 1),
            "tasks_per_second": rounded(len(main.predictions) / main.seconds, 1) if main.seconds else None,
            "cold_starts": sum(p.cold_start for p in main.predictions),
            "rule_agreement": rounded(rule_agreement(main)),
            "explorations": sum(p.exploration for p in main.predictions),
            "scheduler": dataclasses.asdict(main_config),
            "learning_rate": main.learning_rate,
            "use_profiles": main.use_profiles,
        },
        "probabilities": probabilities,
        "calibration": {
            "scope": "all arms" if main.feedback == "full" else "chosen arm",
            "tasksage": _bins(*prediction_pairs(dataset, main.predictions, calibration_scope)),
            PER_KIND_BASELINE: _bins(*prediction_pairs(dataset, base_kind, calibration_scope)),
        },
        "duration": {
            "tasksage_mae_ms": rounded(_duration_mae(dataset, main.predictions, chosen_arms), 1),
            "base_rates_mae_ms": rounded(_duration_mae(dataset, base_global, chosen_arms), 1),
            "base_rates_per_kind_mae_ms": rounded(_duration_mae(dataset, base_kind, chosen_arms), 1),
            "note": "chosen arm's predicted duration against its recorded duration; null without durations",
        },
    }
    table = rt.truth_table(dataset)
    if table is not None:
        report["routing"] = routing_section(dataset, table, main_config, runs)
        report["exploration"] = exploration_cost(
            table, main.predictions, main.success_target, main.success_value_usd
        )
        if len(table.arms) == 2:
            report["two_arm"] = _two_arm_section(table, runs, base_global, base_kind)
    else:
        report["routing"] = {
            "note": "routing needs every arm's outcome on every task; this dataset lacks some"
        }
    if ablations:
        report["ablations"] = [_ablation(dataset, table, main_config, run) for run in (main, *ablations)]
    return report


def rule_agreement(run: RunRecord) -> float | None:
    """Share of non-exploring, non-cold-start schedules whose pick the offline rule (routing.choose)
    reproduces from the schedule's own alternatives: 1.0 shows the target sweep re-applies the very
    rule the worker applied."""
    checked = agreed = 0
    for p in run.predictions:
        if p.exploration or p.cold_start:
            continue
        arms = sorted(p.probabilities)
        pick = rt.choose_by_rule(
            [p.probabilities[a] for a in arms],
            [p.costs.get(a) for a in arms],
            run.success_target,
            run.success_value_usd,
        )
        checked += 1
        agreed += arms[pick] == p.chosen
    return agreed / checked if checked else None


def _dataset_section(dataset: Dataset) -> dict[str, Any]:
    h = dataset.header
    table = rt.truth_table(dataset)
    arms = []
    for arm in dataset.arms:
        spec = dataset.arm_spec(arm)
        entry: dict[str, Any] = {"arm": arm_name(arm), "label": spec.name}
        if table is not None:
            j = table.index(arm)
            entry["success_rate"] = rounded(rt.arm_rates(table)[j])
            entry["total_cost_usd"] = rounded(rt.arm_costs(table)[j], 6)
        arms.append(entry)
    return {
        "name": h.name,
        "tasks": len(dataset.tasks),
        "description": h.description,
        "source": h.source,
        "attribution": h.attribution,
        "notes": list(h.notes),
        "arms": arms,
        "kinds": len({t.task.kind for t in dataset.tasks}),
    }


def _two_arm_section(
    table: rt.TruthTable,
    runs: Sequence[RunRecord],
    base_global: Sequence[Prediction],
    base_kind: Sequence[Prediction],
) -> dict[str, Any]:
    costs = rt.arm_costs(table)
    weak = min(range(2), key=lambda j: (costs[j], table.arms[j]))
    strong = 1 - weak
    weak_outcomes = [row[weak] for row in table.success]
    strong_outcomes = [row[strong] for row in table.success]

    def gain(preds: Sequence[Prediction]) -> list[float]:
        return [
            p.probabilities.get(table.arms[strong], 0.0) - p.probabilities.get(table.arms[weak], 0.0)
            for p in preds
        ]

    main = runs[0]
    curve = rt.apgr_curve(gain(main.predictions), weak_outcomes, strong_outcomes)
    strong_rate = curve.strong_rate
    level = LEVEL_FRACTION * strong_rate
    sweep_point = rt.cheapest_point(sweep_of(table, main.predictions), level)
    share = rt.share_at(curve, level)
    out: dict[str, Any] = {
        "weak": arm_name(table.arms[weak]),
        "strong": arm_name(table.arms[strong]),
        "weak_success_rate": rounded(curve.weak_rate),
        "strong_success_rate": rounded(strong_rate),
        "score": "predicted gain p(strong) - p(weak); the share x with the largest gains goes to the strong arm",
        "apgr": {
            "tasksage": rounded(curve.apgr),
            PER_ARM_BASELINE: rounded(rt.apgr_curve(gain(base_global), weak_outcomes, strong_outcomes).apgr),
            PER_KIND_BASELINE: rounded(rt.apgr_curve(gain(base_kind), weak_outcomes, strong_outcomes).apgr),
            "random": 0.5,
        },
        "curve": {
            "strong_share": [
                round(x, 5) for x in curve.strong_share[:: max(1, len(curve.strong_share) // 400)]
            ],
            "success_rate": [
                round(y, 5) for y in curve.success_rate[:: max(1, len(curve.success_rate) // 400)]
            ],
        },
        "level": rounded(level),
        "strong_share_at_95": rounded(share),
        "always_strong_cost_usd": rounded(costs[strong], 6),
    }
    if sweep_point is not None:
        out["at_95_sweep"] = {
            "target": sweep_point.target,
            "success_rate": rounded(sweep_point.success_rate),
            "of_strong": rounded(sweep_point.success_rate / strong_rate),
            "total_cost_usd": rounded(sweep_point.total_cost, 6),
            "cost_saving_x": rounded(
                costs[strong] / sweep_point.total_cost if sweep_point.total_cost else None, 3
            ),
        }
    return out


def _ablation(
    dataset: Dataset, table: rt.TruthTable | None, config: SchedulerConfig, run: RunRecord
) -> dict[str, Any]:
    all_arms = [[o.arm for o in item.outcomes] for item in dataset.tasks]
    scores = metrics.probability_scores(*prediction_pairs(dataset, run.predictions, all_arms))
    out: dict[str, Any] = {
        "label": run.label,
        "use_profiles": run.use_profiles,
        "learning_rate": run.learning_rate,
        "all_arms": _scores(scores),
    }
    if table is not None:
        rates = rt.arm_rates(table)
        best = rt.best_single(table)
        best_cost = rt.arm_costs(table)[best]
        oracle_cost = rt.score_choices(table, rt.oracle_choices(table), "").total_cost
        p = rt.cheapest_point(sweep_of(table, run.predictions), LEVEL_FRACTION * rates[best])
        out["at_95_sweep"] = (
            None if p is None else {"target": p.target, **point_row(p, best_cost, oracle_cost)}
        )
        live = rt.score_choices(table, choices_of(table, run.predictions), "")
        out["live"] = {
            "success_rate": rounded(live.success_rate),
            "total_cost_usd": rounded(live.total_cost, 6),
        }
        if len(table.arms) == 2:
            costs_all = rt.arm_costs(table)
            weak = min(range(2), key=lambda j: (costs_all[j], table.arms[j]))
            strong = 1 - weak
            scores_gain = [
                pr.probabilities.get(table.arms[strong], 0.0) - pr.probabilities.get(table.arms[weak], 0.0)
                for pr in run.predictions
            ]
            out["apgr"] = rounded(
                rt.apgr_curve(
                    scores_gain, [r[weak] for r in table.success], [r[strong] for r in table.success]
                ).apgr
            )
    return out
