"""Assemble the evaluation report (a JSON-ready dict) from replay records. Pure.

Sections: probabilities (Brier, log loss, AUC, ECE against base-rate predictors fed the same
outcomes), calibration bins, duration MAE, routing (the run and every baseline on the ground
truth), the 95% point, the success-target sweep, two-arm figures (APGR, cost saving) and ablations.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

from processors.evaluation import metrics
from processors.evaluation import routing as rt
from processors.evaluation.dataset import Dataset, arm_name
from processors.evaluation.exploration_cost import exploration_cost
from processors.evaluation.offline import Prediction
from processors.evaluation.runs import RunRecord, base_rate_policy, base_rate_predictions
from processors.scheduling.types import Arm, SchedulerConfig

LEVEL_FRACTION = 0.95
SWEEP_NOTE_FULL = (
    "recomputed offline from the probabilities and costs every schedule carries for all arms: under "
    "full feedback the statistics do not depend on which arm was chosen, so a run at another target "
    "would have produced the same predictions and these exact choices"
)
SWEEP_NOTE_BANDIT = (
    "recomputed offline from this run's stored predictions; under bandit feedback the predictions "
    "depend on the arms chosen, so the sweep is an approximation; the live runs at each target are exact"
)


def _r(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def _scores(s: metrics.ProbabilityScores) -> dict[str, Any]:
    return {
        "pairs": s.count,
        "brier": _r(s.brier),
        "log_loss": _r(s.log_loss),
        "auc": _r(s.auc),
        "ece": _r(s.ece),
        "mean_prediction": _r(s.mean_prediction),
        "observed_rate": _r(s.observed_rate),
    }


def prediction_pairs(
    dataset: Dataset, preds: Sequence[Prediction], arms_of: Sequence[Sequence[Arm]]
) -> tuple[list[float], list[bool]]:
    """(probability, outcome) for each task's listed arms that have both."""
    ps: list[float] = []
    ys: list[bool] = []
    for item, pred, arms in zip(dataset.tasks, preds, arms_of, strict=True):
        for arm in arms:
            outcome = item.outcome(arm)
            if outcome is not None and arm in pred.probabilities:
                ps.append(pred.probabilities[arm])
                ys.append(outcome.success)
    return ps, ys


def _bins(ps: Sequence[float], ys: Sequence[bool]) -> list[dict[str, Any]]:
    return [
        {
            "lower": b.lower,
            "upper": b.upper,
            "count": b.count,
            "mean_prediction": _r(b.mean_prediction),
            "observed_rate": _r(b.observed_rate),
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


def _matrix(
    table: rt.TruthTable, preds: Sequence[Prediction]
) -> tuple[list[list[float]], list[list[float | None]]]:
    probs = [[p.probabilities.get(a, 0.0) for a in table.arms] for p in preds]
    costs = [[p.costs.get(a) for a in table.arms] for p in preds]
    return probs, costs


def _row(result: rt.RoutingResult, best_cost: float, oracle_cost: float, level: float) -> dict[str, Any]:
    saving = best_cost - oracle_cost
    return {
        "policy": result.name,
        "success_rate": _r(result.success_rate),
        "total_cost_usd": _r(result.total_cost, 6),
        "cost_vs_best_single": _r(result.total_cost / best_cost if best_cost else None),
        "oracle_saving_recovered": _r((best_cost - result.total_cost) / saving if saving > 0 else None),
        "meets_95": result.success_rate >= level - 1e-12,
        "shares": {k: round(v, 4) for k, v in sorted(result.shares.items())},
        "note": result.note,
    }


def _choices(table: rt.TruthTable, preds: Sequence[Prediction]) -> list[int]:
    return [table.index(p.chosen) for p in preds]


def _sweep(table: rt.TruthTable, preds: Sequence[Prediction]) -> list[rt.SweepPoint]:
    """The target sweep over a run's predictions; cold starts keep their tier-1 pick."""
    probs, costs = _matrix(table, preds)
    fixed = [table.index(p.chosen) if p.cold_start else None for p in preds]
    return rt.target_sweep(table, probs, costs, fixed=fixed)


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
    main_config = dataclasses.replace(config, success_target=main.success_target)
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
                ("base rates (per agent/model)", base_global),
                ("base rates per kind", base_kind),
            )
        }
    calibration_scope = all_arms if main.feedback == "full" else chosen_arms
    report: dict[str, Any] = {
        "dataset": _dataset_section(dataset),
        "run": {
            **(meta or {}),
            "feedback": main.feedback,
            "success_target": main.success_target,
            "tasks": len(main.predictions),
            "seconds": _r(main.seconds, 1),
            "tasks_per_second": _r(len(main.predictions) / main.seconds, 1) if main.seconds else None,
            "cold_starts": sum(p.cold_start for p in main.predictions),
            "rule_agreement": _r(rule_agreement(main)),
            "explorations": sum(p.exploration for p in main.predictions),
            "scheduler": dataclasses.asdict(main_config),
            "learning_rate": main.learning_rate,
            "use_profiles": main.use_profiles,
        },
        "probabilities": probabilities,
        "calibration": {
            "scope": "all arms" if main.feedback == "full" else "chosen arm",
            "tasksage": _bins(*prediction_pairs(dataset, main.predictions, calibration_scope)),
            "base rates per kind": _bins(*prediction_pairs(dataset, base_kind, calibration_scope)),
        },
        "duration": {
            "tasksage_mae_ms": _r(_duration_mae(dataset, main.predictions, chosen_arms), 1),
            "base_rates_mae_ms": _r(_duration_mae(dataset, base_global, chosen_arms), 1),
            "base_rates_per_kind_mae_ms": _r(_duration_mae(dataset, base_kind, chosen_arms), 1),
            "note": "chosen arm's predicted duration against its recorded duration; null without durations",
        },
    }
    table = rt.truth_table(dataset)
    if table is not None:
        report["routing"] = _routing_section(dataset, table, main_config, runs)
        report["exploration"] = exploration_cost(table, main.predictions, main.success_target)
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
        pick = rt.choose(
            [p.probabilities[a] for a in arms], [p.costs.get(a) for a in arms], run.success_target
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
            entry["success_rate"] = _r(rt.arm_rates(table)[j])
            entry["total_cost_usd"] = _r(rt.arm_costs(table)[j], 6)
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


def _routing_section(
    dataset: Dataset, table: rt.TruthTable, config: SchedulerConfig, runs: Sequence[RunRecord]
) -> dict[str, Any]:
    main = runs[0]
    rates = rt.arm_rates(table)
    best = rt.best_single(table)
    best_cost = rt.arm_costs(table)[best]
    level = LEVEL_FRACTION * rates[best]
    oracle = rt.score_choices(table, rt.oracle_choices(table), "oracle", "cheapest arm that succeeds")

    def row(result: rt.RoutingResult) -> dict[str, Any]:
        return _row(result, best_cost, oracle.total_cost, level)

    rows = []
    for run in runs:
        rows.append(
            row(
                rt.score_choices(
                    table,
                    _choices(table, run.predictions),
                    f"tasksage (target {run.success_target:g})",
                    "live run",
                )
            )
        )
    for per_kind, name in ((False, "base rates (per agent/model)"), (True, "base rates per kind")):
        policy = base_rate_policy(dataset, config, main, per_kind=per_kind)
        rows.append(
            row(rt.score_choices(table, _choices(table, policy), f"{name} (target {main.success_target:g})"))
        )
    rows.append(
        row(
            rt.score_choices(
                table, [best] * table.tasks, "always the best single", arm_name(table.arms[best])
            )
        )
    )
    within = rt.cheapest_single_within(table, LEVEL_FRACTION)
    rows.append(
        row(
            rt.score_choices(
                table, [within] * table.tasks, "cheapest single within 95%", arm_name(table.arms[within])
            )
        )
    )
    tiers = rt.static_tier_choices(dataset, table)
    if tiers is not None:
        rows.append(
            row(rt.score_choices(table, tiers, "static tier table", "tier 1 of the kind (cold-start rule)"))
        )
    rows.append(row(rt.expected_random(table)))
    mix = rt.random_mix_at(table, level)
    if mix is not None:
        rows.append(row(mix))
    rows.append(row(oracle))
    rows.append(
        row(
            rt.score_choices(
                table, rt.oracle_at(table, level), "oracle at 95%", "gives up the costliest wins"
            )
        )
    )

    sweep = _sweep(table, main.predictions)
    base_kind = base_rate_predictions(dataset, config, main, per_kind=True)
    kind_sweep = _sweep(table, base_kind)
    curves: dict[str, Any] = {"tasksage": _points(sweep), "base rates per kind": _points(kind_sweep)}
    truth = _truth_sweep(dataset, table)
    if truth is not None:
        curves["true probabilities"] = _points(truth)
    at_level: dict[str, Any] = {}
    for name, points in (
        ("tasksage (sweep)", sweep),
        ("base rates per kind (sweep)", kind_sweep),
        ("true probabilities", truth),
    ):
        if points is None:
            continue
        p = rt.cheapest_point(points, level)
        at_level[name] = (
            None if p is None else {"target": p.target, **_point_row(p, best_cost, oracle.total_cost)}
        )
    live = [
        r
        for r in runs
        if rt.score_choices(table, _choices(table, r.predictions), "").success_rate >= level - 1e-12
    ]
    if live:
        cheapest = min(
            live, key=lambda r: rt.score_choices(table, _choices(table, r.predictions), "").total_cost
        )
        res = rt.score_choices(table, _choices(table, cheapest.predictions), "")
        at_level["tasksage (live runs)"] = {
            "target": cheapest.success_target,
            **_point_row(
                rt.SweepPoint(cheapest.success_target, res.success_rate, res.total_cost),
                best_cost,
                oracle.total_cost,
            ),
        }
    else:
        at_level["tasksage (live runs)"] = None
    zero = rt.score_choices(table, [within] * table.tasks, "")
    at_level["cheapest single within 95% (zero router)"] = _point_row(
        rt.SweepPoint(math.nan, zero.success_rate, zero.total_cost), best_cost, oracle.total_cost
    )
    if mix is not None:
        at_level["random mix"] = _point_row(
            rt.SweepPoint(math.nan, mix.success_rate, mix.total_cost), best_cost, oracle.total_cost
        )
    return {
        "level": _r(level),
        "level_definition": f"{LEVEL_FRACTION:.0%} of the best single arm's success rate ({arm_name(table.arms[best])})",
        "rows": rows,
        "at_95": at_level,
        "sweep_method": SWEEP_NOTE_FULL if main.feedback == "full" else SWEEP_NOTE_BANDIT,
        "curves": curves,
        "oracle_cost_usd": _r(oracle.total_cost, 6),
        "best_single_cost_usd": _r(best_cost, 6),
    }


def _points(points: Sequence[rt.SweepPoint]) -> list[dict[str, float | None]]:
    return [
        {"target": p.target, "success_rate": _r(p.success_rate), "total_cost_usd": _r(p.total_cost, 6)}
        for p in points
    ]


def _point_row(p: rt.SweepPoint, best_cost: float, oracle_cost: float) -> dict[str, Any]:
    saving = best_cost - oracle_cost
    return {
        "success_rate": _r(p.success_rate),
        "total_cost_usd": _r(p.total_cost, 6),
        "cost_vs_best_single": _r(p.total_cost / best_cost if best_cost else None),
        "best_single_cost_over_this": _r(best_cost / p.total_cost if p.total_cost else None, 3),
        "oracle_saving_recovered": _r((best_cost - p.total_cost) / saving if saving > 0 else None),
    }


def _truth_sweep(dataset: Dataset, table: rt.TruthTable) -> list[rt.SweepPoint] | None:
    """The greedy rule fed the synthetic ground truth (true probabilities, list costs): a ceiling."""
    if not all(item.truth for item in dataset.tasks):
        return None
    probs = [[item.truth.get(a, 0.0) for a in table.arms] for item in dataset.tasks]
    mean_cost = [c / table.tasks for c in rt.arm_costs(table)]
    costs: list[list[float | None]] = [list(mean_cost) for _ in dataset.tasks]
    return rt.target_sweep(table, probs, costs)


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
    sweep_point = rt.cheapest_point(_sweep(table, main.predictions), level)
    share = rt.share_at(curve, level)
    out: dict[str, Any] = {
        "weak": arm_name(table.arms[weak]),
        "strong": arm_name(table.arms[strong]),
        "weak_success_rate": _r(curve.weak_rate),
        "strong_success_rate": _r(strong_rate),
        "score": "predicted gain p(strong) - p(weak); the share x with the largest gains goes to the strong arm",
        "apgr": {
            "tasksage": _r(curve.apgr),
            "base rates (per agent/model)": _r(
                rt.apgr_curve(gain(base_global), weak_outcomes, strong_outcomes).apgr
            ),
            "base rates per kind": _r(rt.apgr_curve(gain(base_kind), weak_outcomes, strong_outcomes).apgr),
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
        "level": _r(level),
        "strong_share_at_95": _r(share),
        "always_strong_cost_usd": _r(costs[strong], 6),
    }
    if sweep_point is not None:
        out["at_95_sweep"] = {
            "target": sweep_point.target,
            "success_rate": _r(sweep_point.success_rate),
            "of_strong": _r(sweep_point.success_rate / strong_rate),
            "total_cost_usd": _r(sweep_point.total_cost, 6),
            "cost_saving_x": _r(
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
        p = rt.cheapest_point(_sweep(table, run.predictions), LEVEL_FRACTION * rates[best])
        out["at_95_sweep"] = (
            None if p is None else {"target": p.target, **_point_row(p, best_cost, oracle_cost)}
        )
        live = rt.score_choices(table, _choices(table, run.predictions), "")
        out["live"] = {"success_rate": _r(live.success_rate), "total_cost_usd": _r(live.total_cost, 6)}
        if len(table.arms) == 2:
            costs_all = rt.arm_costs(table)
            weak = min(range(2), key=lambda j: (costs_all[j], table.arms[j]))
            strong = 1 - weak
            scores_gain = [
                pr.probabilities.get(table.arms[strong], 0.0) - pr.probabilities.get(table.arms[weak], 0.0)
                for pr in run.predictions
            ]
            out["apgr"] = _r(
                rt.apgr_curve(
                    scores_gain, [r[weak] for r in table.success], [r[strong] for r in table.success]
                ).apgr
            )
    return out
