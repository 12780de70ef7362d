"""`tasksage evaluate --offline` as a user runs it (a real subprocess, no broker or database):
simulate the agent-work profile, replay it with kinds withheld and bandit feedback, read the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

TASKSAGE = str(Path(sys.executable).with_name("tasksage"))


def _run(tmp_path: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_")}
    env |= {"TASKSAGE_DATA_DIR": str(tmp_path / "data"), "TASKSAGE_LOG_LEVEL": "WARNING", "COLUMNS": "200"}
    done = subprocess.run(
        [TASKSAGE, *args], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_offline_replay_of_agent_work_with_kinds_withheld(tmp_path: Path) -> None:
    data = tmp_path / "agents.jsonl"
    _run(
        tmp_path, "simulate", "--profile", "agent-work", "--tasks", "60", "--seed", "5", "--output", str(data)
    )
    out = _run(
        tmp_path,
        "evaluate",
        "--offline",
        "--withhold-kind",
        "--feedback",
        "bandit",
        "--reveal-delay",
        "5",
        "--dataset",
        str(data),
        "--report",
        str(tmp_path / "report"),
    )
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["run"]["learned_layer"] is True
    assert report["run"]["tasks"] == 60
    assert report["dataset"]["kinds"] == 1  # every kind withheld
    assert len(report["dataset"]["arms"]) == 24
    assert report["exploration"]["explorations"] == report["run"]["explorations"]
    assert "Cheapest point reaching 95%" in out
