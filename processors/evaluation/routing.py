"""Routing quality against ground truth: baselines, target sweeps, RouteLLM's APGR. Pure.

The truth table holds every arm's outcome and cost on every task, so any policy can be scored
offline: its success rate is the mean outcome of the arms it picked, its cost their summed cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from processors.evaluation.dataset import Dataset, outcome_cost, tier_rows
from processors.scheduling.tiers import tiers_for_kind
from processors.scheduling.types import Arm

TARGET_GRID = (*(i / 100 for i in range(101)), 1.01)  # 1.01: never met, so the most likely arm


@dataclass(frozen=True, slots=True)
class TruthTable:
    arms: tuple[Arm, ...]
    kinds: tuple[str | None, ...]
    success: tuple[tuple[bool, ...], ...]  # [task][arm]
    cost: tuple[tuple[float, ...], ...]  # [task][arm], 0.0 where the data has no cost

    @property
    def tasks(self) -> int:
        return len(self.success)

    def index(self, arm: Arm) -> int:
        return self.arms.index(arm)


def truth_table(dataset: Dataset) -> TruthTable | None:
    """None unless every task has an outcome for every arm (routing needs counterfactuals)."""
    arms = dataset.arms
    success: list[tuple[bool, ...]] = []
    cost: list[tuple[float, ...]] = []
    for item in dataset.tasks:
        row = [item.outcome(a) for a in arms]
        if any(o is None for o in row):
            return None
        success.append(tuple(o.success for o in row if o is not None))
        cost.append(tuple(outcome_cost(dataset, o) or 0.0 for o in row if o is not None))
    return TruthTable(arms, tuple(t.task.kind for t in dataset.tasks), tuple(success), tuple(cost))


@dataclass(frozen=True, slots=True)
class RoutingResult:
    name: str
    success_rate: float
    total_cost: float
    shares: dict[str, float]  # share of tasks per arm ("agent/model")
    note: str = ""


def score_choices(table: TruthTable, choices: Sequence[int], name: str, note: str = "") -> RoutingResult:
    n = len(choices)
    if n != table.tasks:
        raise ValueError(f"{n} choices for {table.tasks} tasks")
    hits = sum(1 for i, c in enumerate(choices) if table.success[i][c])
    cost = math.fsum(table.cost[i][c] for i, c in enumerate(choices))
    counts = [0] * len(table.arms)
    for c in choices:
        counts[c] += 1
    shares = {f"{a.agent}/{a.model}": counts[j] / n for j, a in enumerate(table.arms) if counts[j]}
    return RoutingResult(name, hits / n if n else 0.0, cost, shares, note)


def arm_rates(table: TruthTable) -> list[float]:
    n = table.tasks
    return [sum(1 for row in table.success if row[j]) / n for j in range(len(table.arms))]


def arm_costs(table: TruthTable) -> list[float]:
    return [math.fsum(row[j] for row in table.cost) for j in range(len(table.arms))]


def best_single(table: TruthTable) -> int:
    rates, costs = arm_rates(table), arm_costs(table)
    return min(range(len(table.arms)), key=lambda j: (-rates[j], costs[j], table.arms[j]))


def cheapest_single_within(table: TruthTable, fraction: float) -> int:
    """The cheapest arm whose success rate is at least fraction x the best arm's."""
    rates, costs = arm_rates(table), arm_costs(table)
    level = fraction * rates[best_single(table)]
    meeting = [j for j in range(len(table.arms)) if rates[j] >= level - 1e-12]
    return min(meeting, key=lambda j: (costs[j], -rates[j], table.arms[j]))


def cheapest_arm(table: TruthTable) -> int:
    costs = arm_costs(table)
    return min(range(len(table.arms)), key=lambda j: (costs[j], table.arms[j]))


def oracle_choices(table: TruthTable) -> list[int]:
    """Per task the cheapest arm that succeeds; when none does, the cheapest arm."""
    out = []
    for succ, cost in zip(table.success, table.cost, strict=True):
        winners = [j for j in range(len(succ)) if succ[j]] or list(range(len(succ)))
        out.append(min(winners, key=lambda j: (cost[j], table.arms[j])))
    return out


def oracle_at(table: TruthTable, level: float) -> list[int]:
    """The cheapest choices reaching success rate `level` with hindsight: the oracle, then the tasks
    where giving up (the cheapest arm, which fails) saves most are given up while the rate allows.
    Every give-up costs exactly one success, so taking the largest savings first is optimal."""
    choices = oracle_choices(table)
    n = table.tasks
    hits = sum(1 for i, c in enumerate(choices) if table.success[i][c])
    savings = []
    for i, c in enumerate(choices):
        cheap = min(range(len(table.arms)), key=lambda j: (table.cost[i][j], table.arms[j]))
        if table.success[i][c] and not table.success[i][cheap]:
            savings.append((table.cost[i][c] - table.cost[i][cheap], i, cheap))
    for saving, i, cheap in sorted(savings, reverse=True):
        if saving <= 0 or (hits - 1) / n < level - 1e-12:
            break
        choices[i] = cheap
        hits -= 1
    return choices


def static_tier_choices(dataset: Dataset, table: TruthTable) -> list[int] | None:
    """What the tier table alone answers (the cold-start rule): tier 1 of the kind, else of '*'."""
    rows = tier_rows(dataset)
    if not rows:
        return None
    out = []
    for kind in table.kinds:
        usable = [r for r in tiers_for_kind(rows, kind) if r.arm in table.arms]
        if not usable:
            return None
        out.append(table.index(usable[0].arm))
    return out


def expected_random(table: TruthTable) -> RoutingResult:
    """A uniformly random arm per task, as an expectation (no sampling noise)."""
    k = len(table.arms)
    rates, costs = arm_rates(table), arm_costs(table)
    return RoutingResult(
        "random",
        math.fsum(rates) / k,
        math.fsum(costs) / k,
        {f"{a.agent}/{a.model}": 1.0 / k for a in table.arms},
        "expected value of a uniformly random arm",
    )


def random_mix_at(table: TruthTable, level: float) -> RoutingResult | None:
    """RouteLLM's random router: a random share w of calls to the best arm, the rest to the cheapest,
    with w just large enough to reach `level` in expectation."""
    best, cheap = best_single(table), cheapest_arm(table)
    rates, costs = arm_rates(table), arm_costs(table)
    if rates[best] < level - 1e-12:
        return None
    if rates[cheap] >= level or rates[best] == rates[cheap]:
        w = 0.0
    else:
        w = (level - rates[cheap]) / (rates[best] - rates[cheap])
    names = (
        f"{table.arms[best].agent}/{table.arms[best].model}",
        f"{table.arms[cheap].agent}/{table.arms[cheap].model}",
    )
    return RoutingResult(
        "random mix",
        (1 - w) * rates[cheap] + w * rates[best],
        (1 - w) * costs[cheap] + w * costs[best],
        {names[0]: w, names[1]: 1 - w} if best != cheap else {names[0]: 1.0},
        f"{w:.0%} of calls to the best arm at random, the rest to the cheapest",
    )


# --- the scheduler's rule, applied offline to stored predictions -------------------------------


def choose(probabilities: Sequence[float], costs: Sequence[float | None], target: float) -> int:
    """The scheduler's greedy rule (processors.scheduling.estimates.rank_key): the cheapest arm whose
    probability meets the target (ties: more likely); if none does, the most likely (ties: cheaper).
    Arms are assumed in a fixed order, which breaks the remaining ties."""
    inf = math.inf
    meeting = [j for j, p in enumerate(probabilities) if p >= target]
    if meeting:
        return min(meeting, key=lambda j: (inf if costs[j] is None else costs[j], -probabilities[j], j))
    return min(
        range(len(probabilities)),
        key=lambda j: (-probabilities[j], inf if costs[j] is None else costs[j], j),
    )


def choose_by_value(probabilities: Sequence[float], costs: Sequence[float | None], value: float) -> int:
    """The scheduler's value rule (processors.scheduling.rules.value_key): the highest
    p * value - cost, an unknown cost counting as the whole value; ties: more likely, cheaper, first."""

    def key(j: int) -> tuple[float, float, float, int]:
        c = costs[j]
        worth = probabilities[j] * value - (value if c is None else c)
        return (-worth, -probabilities[j], math.inf if c is None else c, j)

    return min(range(len(probabilities)), key=key)


def choose_by_rule(
    probabilities: Sequence[float], costs: Sequence[float | None], target: float, value: float | None
) -> int:
    """The pick of the rule a run was configured with: the value rule when `value` is set."""
    return (
        choose(probabilities, costs, target)
        if value is None
        else choose_by_value(probabilities, costs, value)
    )


@dataclass(frozen=True, slots=True)
class SweepPoint:
    target: float  # the rule's knob: a success target, or a success value in dollars
    success_rate: float
    total_cost: float
    rule: str = "target"  # "target" | "value" (processors/scheduling/rules.py)


def target_sweep(
    table: TruthTable,
    probabilities: Sequence[Sequence[float]],
    costs: Sequence[Sequence[float | None]],
    targets: Sequence[float] = TARGET_GRID,
    fixed: Sequence[int | None] | None = None,
) -> list[SweepPoint]:
    """Success and cost of the greedy rule at each target, from the same per-task predictions.

    `fixed[i]`, when not None, is a pick that does not depend on the target (a cold start takes
    tier 1 whatever the target), so the sweep keeps it."""
    keep = list(fixed) if fixed is not None else [None] * len(probabilities)
    points = []
    for target in targets:
        picks = [
            f if f is not None else choose(p, c, target)
            for p, c, f in zip(probabilities, costs, keep, strict=True)
        ]
        r = score_choices(table, picks, "sweep")
        points.append(SweepPoint(target, r.success_rate, r.total_cost))
    return points


# Success values for the value-rule sweep: 1e-5 to 1e5 dollars, 20 points a decade, wide enough
# for per-call prices from fractions of a cent (RouteLLM) to dollars (agent runs).
VALUE_GRID: tuple[float, ...] = tuple(10.0 ** (k / 20.0) for k in range(-100, 101))


def value_sweep(
    table: TruthTable,
    probabilities: Sequence[Sequence[float]],
    costs: Sequence[Sequence[float | None]],
    values: Sequence[float] = VALUE_GRID,
    fixed: Sequence[int | None] | None = None,
) -> list[SweepPoint]:
    """Success and cost of the value rule (processors.scheduling.rules) at each success value,
    from the same predictions (`fixed` as in target_sweep): per task the highest
    p * value - cost, an unknown cost counting as the whole value; ties go to the first arm."""
    p = np.asarray(probabilities, dtype=float).reshape(len(probabilities), len(table.arms))
    c = np.asarray([[np.nan if x is None else x for x in row] for row in costs], dtype=float).reshape(p.shape)
    keep = np.asarray([-1 if f is None else f for f in (fixed or [None] * len(p))], dtype=int)
    points = []
    for value in values:
        worth = p * value - np.where(np.isnan(c), value, c)
        picks = np.where(keep >= 0, keep, np.argmax(worth, axis=1)) if len(p) else keep
        r = score_choices(table, [int(j) for j in picks], "sweep")
        points.append(SweepPoint(value, r.success_rate, r.total_cost, rule="value"))
    return points


def cheapest_point(points: Sequence[SweepPoint], level: float) -> SweepPoint | None:
    meeting = [p for p in points if p.success_rate >= level - 1e-12]
    return min(meeting, key=lambda p: (p.total_cost, -p.success_rate)) if meeting else None


# --- RouteLLM's APGR for two arms ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GainCurve:
    strong_share: tuple[float, ...]  # x: share of calls to the strong arm
    success_rate: tuple[float, ...]  # y
    apgr: float | None
    weak_rate: float
    strong_rate: float


def apgr_curve(scores: Sequence[float], weak: Sequence[bool], strong: Sequence[bool]) -> GainCurve:
    """RouteLLM's average performance gap recovered: route the share x of tasks with the highest
    score to the strong arm; PGR(x) = (rate(x) - weak rate) / (strong rate - weak rate); APGR is the
    area under PGR over x in [0, 1] (trapezoid rule, as lm-sys/RouteLLM evals/evaluate.py computes it).
    Tied scores are evaluated only at the ends of the tie, i.e. in expectation over tie orders.
    None when the two arms have the same success rate."""
    n = len(scores)
    if not (n == len(weak) == len(strong)) or n == 0:
        raise ValueError("scores, weak and strong must be non-empty and of equal length")
    weak_rate = sum(weak) / n
    strong_rate = sum(strong) / n
    order = sorted(range(n), key=lambda i: -scores[i])
    xs, ys = [0.0], [weak_rate]
    hits = float(sum(weak))
    k = 0
    while k < n:
        j = k
        while j + 1 < n and scores[order[j + 1]] == scores[order[k]]:
            j += 1
        for i in order[k : j + 1]:
            hits += float(strong[i]) - float(weak[i])
        k = j + 1
        xs.append(k / n)
        ys.append(hits / n)
    area = math.fsum((xs[i + 1] - xs[i]) * (ys[i] + ys[i + 1]) / 2.0 for i in range(len(xs) - 1))
    gap = strong_rate - weak_rate
    apgr = (area - weak_rate) / gap if gap != 0 else None
    return GainCurve(tuple(xs), tuple(ys), apgr, weak_rate, strong_rate)


def share_at(curve: GainCurve, level: float) -> float | None:
    """The smallest strong share at which the curve reaches `level` (linear between points)."""
    for i, (x, y) in enumerate(zip(curve.strong_share, curve.success_rate, strict=True)):
        if y >= level - 1e-12:
            if i == 0:
                return x
            x0, y0 = curve.strong_share[i - 1], curve.success_rate[i - 1]
            return x0 + (x - x0) * (level - y0) / (y - y0) if y != y0 else x
    return None
