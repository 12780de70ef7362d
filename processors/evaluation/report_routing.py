"""The routing figures of the evaluation report: the run and every baseline on the ground truth,
the point at 95% of the best single arm's success, and the success-target sweep. Pure."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from processors.evaluation import routing as rt
from processors.evaluation.dataset import Dataset, arm_name
from processors.evaluation.offline import Prediction
from processors.evaluation.runs import (
    PER_ARM_BASELINE,
    PER_KIND_BASELINE,
    TRUE_PROBABILITIES,
    RunRecord,
    base_rate_policy,
    base_rate_predictions,
)
from processors.scheduling.types import SchedulerConfig

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


def rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or not math.isfinite(value) else round(value, digits)


def routing_row(
    result: rt.RoutingResult, best_cost: float, oracle_cost: float, level: float
) -> dict[str, Any]:
    saving = best_cost - oracle_cost
    return {
        "policy": result.name,
        "success_rate": rounded(result.success_rate),
        "total_cost_usd": rounded(result.total_cost, 6),
        "cost_vs_best_single": rounded(result.total_cost / best_cost if best_cost else None),
        "oracle_saving_recovered": rounded((best_cost - result.total_cost) / saving if saving > 0 else None),
        "meets_95": result.success_rate >= level - 1e-12,
        "shares": {k: round(v, 4) for k, v in sorted(result.shares.items())},
        "note": result.note,
    }


def choices_of(table: rt.TruthTable, preds: Sequence[Prediction]) -> list[int]:
    return [table.index(p.chosen) for p in preds]


def _matrix(
    table: rt.TruthTable, preds: Sequence[Prediction]
) -> tuple[list[list[float]], list[list[float | None]]]:
    probs = [[p.probabilities.get(a, 0.0) for a in table.arms] for p in preds]
    costs = [[p.costs.get(a) for a in table.arms] for p in preds]
    return probs, costs


def sweep_of(table: rt.TruthTable, preds: Sequence[Prediction], rule: str = "target") -> list[rt.SweepPoint]:
    """The sweep of one rule's knob over a run's predictions (the success target, or the success
    value of the value rule); cold starts keep their tier-1 pick."""
    probs, costs = _matrix(table, preds)
    fixed = [table.index(p.chosen) if p.cold_start else None for p in preds]
    sweep = rt.value_sweep if rule == "value" else rt.target_sweep
    return sweep(table, probs, costs, fixed=fixed)


def knob(p: rt.SweepPoint) -> dict[str, float]:
    """The setting behind a sweep point, named for its rule."""
    return {"value_usd": p.target} if p.rule == "value" else {"target": p.target}


def routing_section(
    dataset: Dataset, table: rt.TruthTable, config: SchedulerConfig, runs: Sequence[RunRecord]
) -> dict[str, Any]:
    main = runs[0]
    rates = rt.arm_rates(table)
    best = rt.best_single(table)
    best_cost = rt.arm_costs(table)[best]
    level = LEVEL_FRACTION * rates[best]
    oracle = rt.score_choices(table, rt.oracle_choices(table), "oracle", "cheapest arm that succeeds")

    def row(result: rt.RoutingResult) -> dict[str, Any]:
        return routing_row(result, best_cost, oracle.total_cost, level)

    rows = []
    for run in runs:
        rows.append(
            row(
                rt.score_choices(
                    table,
                    choices_of(table, run.predictions),
                    f"tasksage ({run.setting})",
                    "live run",
                )
            )
        )
    for per_kind, name in ((False, PER_ARM_BASELINE), (True, PER_KIND_BASELINE)):
        policy = base_rate_policy(dataset, config, main, per_kind=per_kind)
        rows.append(row(rt.score_choices(table, choices_of(table, policy), f"{name} ({main.setting})")))
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

    base_kind = base_rate_predictions(dataset, config, main, per_kind=True)
    sweeps: dict[str, list[rt.SweepPoint] | None] = {}
    for rule in ("target", "value"):
        sweeps[f"tasksage ({rule} sweep)"] = sweep_of(table, main.predictions, rule)
        sweeps[f"{PER_KIND_BASELINE} ({rule} sweep)"] = sweep_of(table, base_kind, rule)
        sweeps[f"{TRUE_PROBABILITIES} ({rule} sweep)"] = truth_sweep(dataset, table, rule)
    curves = {name: curve_points(points) for name, points in sweeps.items() if points is not None}
    at_level: dict[str, Any] = {}
    for name, points in sweeps.items():
        if points is None:
            continue
        p = rt.cheapest_point(points, level)
        at_level[name] = None if p is None else {**knob(p), **point_row(p, best_cost, oracle.total_cost)}
    live = [
        r
        for r in runs
        if rt.score_choices(table, choices_of(table, r.predictions), "").success_rate >= level - 1e-12
    ]
    if live:
        cheapest = min(
            live, key=lambda r: rt.score_choices(table, choices_of(table, r.predictions), "").total_cost
        )
        res = rt.score_choices(table, choices_of(table, cheapest.predictions), "")
        at_level["tasksage (live runs)"] = {
            **(
                {"value_usd": cheapest.success_value_usd}
                if cheapest.success_value_usd is not None
                else {"target": cheapest.success_target}
            ),
            **point_row(
                rt.SweepPoint(cheapest.success_target, res.success_rate, res.total_cost),
                best_cost,
                oracle.total_cost,
            ),
        }
    else:
        at_level["tasksage (live runs)"] = None
    zero = rt.score_choices(table, [within] * table.tasks, "")
    at_level["cheapest single within 95% (zero router)"] = point_row(
        rt.SweepPoint(math.nan, zero.success_rate, zero.total_cost), best_cost, oracle.total_cost
    )
    if mix is not None:
        at_level["random mix"] = point_row(
            rt.SweepPoint(math.nan, mix.success_rate, mix.total_cost), best_cost, oracle.total_cost
        )
    return {
        "level": rounded(level),
        "level_definition": f"{LEVEL_FRACTION:.0%} of the best single arm's success rate ({arm_name(table.arms[best])})",
        "rows": rows,
        "at_95": at_level,
        "sweep_method": SWEEP_NOTE_FULL if main.feedback == "full" else SWEEP_NOTE_BANDIT,
        "curves": curves,
        "oracle_cost_usd": rounded(oracle.total_cost, 6),
        "best_single_cost_usd": rounded(best_cost, 6),
    }


def curve_points(points: Sequence[rt.SweepPoint]) -> list[dict[str, float | None]]:
    return [
        {
            **knob(p),
            "success_rate": rounded(p.success_rate),
            "total_cost_usd": rounded(p.total_cost, 6),
        }
        for p in points
    ]


def point_row(p: rt.SweepPoint, best_cost: float, oracle_cost: float) -> dict[str, Any]:
    saving = best_cost - oracle_cost
    return {
        "success_rate": rounded(p.success_rate),
        "total_cost_usd": rounded(p.total_cost, 6),
        "cost_vs_best_single": rounded(p.total_cost / best_cost if best_cost else None),
        "best_single_cost_over_this": rounded(best_cost / p.total_cost if p.total_cost else None, 3),
        "oracle_saving_recovered": rounded((best_cost - p.total_cost) / saving if saving > 0 else None),
    }


def truth_sweep(dataset: Dataset, table: rt.TruthTable, rule: str = "target") -> list[rt.SweepPoint] | None:
    """The rule fed the synthetic ground truth (true probabilities, list costs): a ceiling."""
    if not dataset.has_truth:
        return None
    probs = [[item.truth.get(a, 0.0) for a in table.arms] for item in dataset.tasks]
    mean_cost = [c / table.tasks for c in rt.arm_costs(table)]
    costs: list[list[float | None]] = [list(mean_cost) for _ in dataset.tasks]
    return (rt.value_sweep if rule == "value" else rt.target_sweep)(table, probs, costs)
