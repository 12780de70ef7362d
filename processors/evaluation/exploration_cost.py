"""What exploration cost a run, measured on the ground truth. Pure.

Under bandit feedback a schedule that explores picks another arm than the greedy rule would
(scheduling.rules: the cheapest arm meeting the target, else the most likely; or the highest
expected value). Every schedule carries every candidate's probability and cost, so the greedy pick
of each exploring schedule is recomputed (routing.choose_by_rule) and both picks are scored on the truth table: the extra spend and the
successes gained or lost are what the run paid to learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.evaluation import routing as rt
from processors.evaluation.offline import Prediction


def exploration_cost(
    table: rt.TruthTable, preds: Sequence[Prediction], target: float, value: float | None = None
) -> dict[str, Any]:
    """Count, extra cost and success difference of the exploring schedules against their greedy picks."""
    explored = extra_cost = extra_success = 0.0
    count = 0
    for i, p in enumerate(preds):
        if not p.exploration or p.chosen not in table.arms:
            continue
        arms = sorted(p.probabilities)
        greedy = arms[
            rt.choose_by_rule(
                [p.probabilities[a] for a in arms], [p.costs.get(a) for a in arms], target, value
            )
        ]
        if greedy not in table.arms:
            continue
        j, g = table.index(p.chosen), table.index(greedy)
        count += 1
        explored += table.cost[i][j]
        extra_cost += table.cost[i][j] - table.cost[i][g]
        extra_success += float(table.success[i][j]) - float(table.success[i][g])
    total = sum(table.cost[i][table.index(p.chosen)] for i, p in enumerate(preds) if p.chosen in table.arms)
    return {
        "explorations": count,
        "share_of_tasks": round(count / len(preds), 4) if preds else None,
        "cost_of_explored_picks_usd": round(explored, 6),
        "extra_cost_vs_greedy_usd": round(extra_cost, 6),
        "extra_cost_share_of_run": round(extra_cost / total, 4) if total else None,
        "success_difference_vs_greedy": round(extra_success / len(preds), 4) if preds else None,
        "note": "exploring schedules against the greedy pick from their own alternatives, on the ground truth",
    }
