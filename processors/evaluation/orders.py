"""How far the headline scores move with the order of the tasks. Pure.

A prequential replay scores one path through the data: which outcomes the learner had seen when it
predicted, and with bandit feedback which arms it chose to see at all. The same tasks in another
order give another path, and on a few thousand tasks the gap between tasksage and the best base
rate moves by tenths of a percent with full feedback and by about a percent with bandit feedback.
`tasksage evaluate --offline --orders N` replays the file's order and N - 1 seeded shuffles and
reports the gap for each, so a difference smaller than that spread is read as what it is. ECE
moves with the order too (the per-arm base rate's by a factor of two on the same pairs), and so
does APGR on two-arm data; both are reported per order beside the gaps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import msgspec
import numpy as np

from processors.evaluation.dataset import Dataset
from processors.evaluation.runs import BASELINES, PER_ARM_BASELINE, TRUE_PROBABILITIES


def shuffled(dataset: Dataset, seed: int) -> tuple[Dataset, list[int]]:
    """The dataset's tasks in a seeded random order, and the permutation (new position -> old index,
    to reorder anything kept per task, such as vectors). Task times are reassigned in the new order
    (the i-th task gets the i-th earliest of the original times), so time still runs forward."""
    permutation = [int(i) for i in np.random.default_rng(seed).permutation(len(dataset.tasks))]
    times = sorted(item.task.occurred_at for item in dataset.tasks)
    tasks = tuple(
        replace(dataset.tasks[old], task=msgspec.structs.replace(dataset.tasks[old].task, occurred_at=time))
        for old, time in zip(permutation, times, strict=True)
    )
    return Dataset(dataset.header, tasks), permutation


def score_gaps(report: dict[str, Any]) -> dict[str, Any]:
    """tasksage's Brier and log loss against the best base rate's, on the scope the feedback mode
    is judged by (all arms with full feedback, the chosen arm with bandit); gaps are relative
    (0.006 = 0.6% worse). ECE is held against the per-arm base rate's, the calibration bar, as a
    difference (ECE is already a probability); the ground truth's ECE rides along where the dataset
    has it, as the floor a perfectly calibrated forecaster would show on the same pairs. On two-arm
    datasets RouteLLM's APGR rides along too: it ranks tasks, so it moves with the order as well."""
    scope = "all_arms" if report["run"]["feedback"] == "full" else "chosen_arm"
    scores = report["probabilities"][scope]
    ours = scores["tasksage"]
    out: dict[str, Any] = {"scope": scope}
    for metric in ("brier", "log_loss"):
        best = min(scores[name][metric] for name in BASELINES)
        out[metric] = ours[metric]
        out[f"best_base_rate_{metric}"] = best
        out[f"{metric}_gap"] = ours[metric] / best - 1.0 if best > 0 else None
    per_arm_ece = scores[PER_ARM_BASELINE]["ece"]
    out["ece"] = ours["ece"]
    out["per_arm_ece"] = per_arm_ece
    out["ece_gap"] = (
        ours["ece"] - per_arm_ece if ours["ece"] is not None and per_arm_ece is not None else None
    )
    out["true_probabilities_ece"] = scores.get(TRUE_PROBABILITIES, {}).get("ece")
    out["apgr"] = report.get("two_arm", {}).get("apgr", {}).get("tasksage")  # two-arm datasets only
    return out


def order_summary(gaps: Sequence[dict[str, Any]], seeds: Sequence[int | None]) -> dict[str, Any]:
    """The per-order gaps (seed None: the file's order) with their mean, least and greatest."""
    if len(gaps) != len(seeds) or not gaps:
        raise ValueError("one seed per order, and at least one order")
    summary: dict[str, Any] = {
        "orders": len(gaps),
        "scope": gaps[0]["scope"],
        "per_order": [{"seed": seed, **gap} for seed, gap in zip(seeds, gaps, strict=True)],
    }
    for metric in ("brier_gap", "log_loss_gap", "ece_gap", "apgr"):
        values = [g[metric] for g in gaps if g[metric] is not None]
        summary[metric] = (
            {"mean": sum(values) / len(values), "min": min(values), "max": max(values)} if values else None
        )
    return summary
