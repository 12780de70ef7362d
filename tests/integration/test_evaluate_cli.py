"""The evaluation commands as a user runs them (real subprocesses): simulate a dataset, evaluate
it against the test broker and PostgreSQL, read the report."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

TASKSAGE = str(Path(sys.executable).with_name("tasksage"))


async def _tasksage(env: dict[str, str], *args: str, timeout_s: float = 120.0) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        TASKSAGE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await asyncio.wait_for(proc.communicate(), timeout_s)
    return proc.returncode or 0, out.decode()


def _env(endpoints, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_")}
    env |= {
        "KAFKA_BOOTSTRAP_SERVERS": endpoints.bootstrap,
        "DATABASE_URL": endpoints.dsn,
        "TASKSAGE_DATA_DIR": str(tmp_path / "data"),
        "TASKSAGE_LOG_LEVEL": "WARNING",
        "COLUMNS": "200",
    }
    return env


async def test_simulate_then_evaluate_writes_a_report_and_prints_the_tables(
    endpoints, tmp_path: Path
) -> None:
    env = _env(endpoints, tmp_path)
    data = tmp_path / "sim.jsonl"
    code, output = await _tasksage(env, "simulate", "--tasks", "40", "--seed", "2", "--output", str(data))
    assert code == 0, output
    report_dir = tmp_path / "report"
    code, output = await _tasksage(
        env, "evaluate", "--dataset", str(data), "--limit", "25", "--feedback", "bandit",
        "--reveal-delay", "2", "--report", str(report_dir),
    )  # fmt: skip
    assert code == 0, output
    report = json.loads((report_dir / "report.json").read_text())
    assert report["run"]["tasks"] == 25 and report["run"]["feedback"] == "bandit"
    assert report["probabilities"]["chosen_arm"]["tasksage"]["pairs"] == 25
    assert (report_dir / "calibration.png").exists() and (report_dir / "cost_success.png").exists()
    records = [json.loads(line) for line in (report_dir / "schedules.jsonl").read_text().splitlines()]
    assert len(records) == 25
    assert all(r["revealed"] == [r["chosen"]] for r in records)  # bandit: the chosen arm only
    for heading in ("Success probability", "Routing on the ground truth", "Cheapest point reaching"):
        assert heading in output


async def test_evaluate_rejects_a_malformed_dataset_with_its_line(endpoints, tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"task": {"task_id": "t1", "description": "x"}, "outcomes": []}\n')
    code, output = await _tasksage(_env(endpoints, tmp_path), "evaluate", "--dataset", str(bad))
    assert code == 2
    assert "line 1" in output and "evaluation-dataset.json" in output
