"""`tasksage evaluate --offline` as a user runs it (a real subprocess, no broker or database):
simulate the agent-work profile, replay it with kinds withheld and bandit feedback, read the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

TASKSAGE = str(Path(sys.executable).with_name("tasksage"))


def _invoke(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_")}
    env |= {"TASKSAGE_DATA_DIR": str(tmp_path / "data"), "TASKSAGE_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    return subprocess.run(
        [TASKSAGE, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )


def _run(tmp_path: Path, *args: str) -> str:
    done = _invoke(tmp_path, *args)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def _simulate(tmp_path: Path, profile: str, tasks: int, seed: int) -> Path:
    data = tmp_path / f"{profile}.jsonl"
    _run(
        tmp_path,
        "simulate",
        "--profile",
        profile,
        "--tasks",
        str(tasks),
        "--seed",
        str(seed),
        "--output",
        str(data),
    )
    return data


def _evaluate_offline(tmp_path: Path, data: Path, *flags: str) -> tuple[str, dict[str, Any]]:
    """Printed tables and report.json of `evaluate --offline FLAGS` on the dataset."""
    out = _run(
        tmp_path, "evaluate", "--offline", *flags, "--dataset", str(data), "--report", str(tmp_path / "r")
    )
    return out, json.loads((tmp_path / "r" / "report.json").read_text())


def test_offline_replay_of_agent_work_with_kinds_withheld(tmp_path: Path) -> None:
    data = _simulate(tmp_path, "agent-work", 60, 5)
    out, report = _evaluate_offline(
        tmp_path, data, "--withhold-kind", "--feedback", "bandit", "--reveal-delay", "5"
    )
    assert report["run"]["learned_layer"] is True
    assert report["run"]["tasks"] == 60
    assert report["dataset"]["kinds"] == 1  # every kind withheld
    assert len(report["dataset"]["arms"]) == 24
    assert report["exploration"]["explorations"] == report["run"]["explorations"]
    assert "Cheapest point reaching 95%" in out


def test_offline_replay_in_three_orders_reports_the_spread_of_the_gap(tmp_path: Path) -> None:
    data = _simulate(tmp_path, "no-signal", 80, 7)
    out, report = _evaluate_offline(tmp_path, data, "--orders", "3")
    orders = report["orders"]
    assert orders["orders"] == 3 and orders["scope"] == "all_arms"
    assert [o["seed"] for o in orders["per_order"]] == [None, 1, 2]
    # The first order is the main report's own replay; the shuffles score the same 80 tasks.
    scores = report["probabilities"]["all_arms"]
    assert orders["per_order"][0]["brier"] == scores["tasksage"]["brier"]
    best = min(scores[name]["brier"] for name in ("base rates (per agent/model)", "base rates per kind"))
    assert orders["per_order"][0]["best_base_rate_brier"] == best
    gaps = [o["brier_gap"] for o in orders["per_order"]]
    assert orders["brier_gap"]["min"] == min(gaps) and orders["brier_gap"]["max"] == max(gaps)
    # ECE against the per-arm base rate's, with the simulated ground truth's beside it: the truth's
    # predictions are the same whatever the order, and so are the pairs they are scored on.
    first = orders["per_order"][0]
    assert first["ece"] == scores["tasksage"]["ece"]
    assert first["per_arm_ece"] == scores["base rates (per agent/model)"]["ece"]
    assert first["true_probabilities_ece"] == scores["true probabilities"]["ece"]
    assert len({o["true_probabilities_ece"] for o in orders["per_order"]}) == 1
    assert "Order spread (3 orders, scored on all arms)" in out


def test_orders_without_offline_is_refused_with_what_to_do(tmp_path: Path) -> None:
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"task": {"task_id": "t1", "description": "x"}, "outcomes": []}) + "\n")
    done = _invoke(tmp_path, "evaluate", "--orders", "2", "--dataset", str(data))
    assert done.returncode == 2
    assert "--orders needs --offline" in done.stdout + done.stderr
