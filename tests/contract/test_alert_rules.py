"""The alert rules' unit tests cover every alert both ways, and the Helm chart carries the same rules
and tier table as deploy/ (the chart cannot read outside its directory, so it holds copies)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.tools import REPO_ROOT

PROMETHEUS_DIR = REPO_ROOT / "deploy" / "prometheus"
CHART_FILES = REPO_ROOT / "deploy" / "helm" / "tasksage" / "files"


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def test_every_alert_has_a_case_where_it_fires_and_one_where_it_stays_silent() -> None:
    alerts = {
        rule["alert"] for group in load(PROMETHEUS_DIR / "alerts.yml")["groups"] for rule in group["rules"]
    }
    cases = [
        case for test in load(PROMETHEUS_DIR / "alerts_test.yml")["tests"] for case in test["alert_rule_test"]
    ]
    fires = {case["alertname"] for case in cases if case.get("exp_alerts")}
    silent = {case["alertname"] for case in cases if not case.get("exp_alerts")}
    assert alerts - fires == set(), "alerts with no case where they fire"
    assert alerts - silent == set(), "alerts with no case where they stay silent"
    assert (fires | silent) - alerts == set(), "cases for alerts that do not exist"


def test_the_chart_carries_the_same_alert_rules_and_tier_table() -> None:
    for original, copy in [
        (PROMETHEUS_DIR / "alerts.yml", CHART_FILES / "alerts.yml"),
        (REPO_ROOT / "deploy" / "tiers.toml", CHART_FILES / "tiers.toml"),
    ]:
        assert copy.read_bytes() == original.read_bytes(), (
            f"{copy} differs from {original}: run `make chart-files`"
        )


def test_the_committed_dashboard_is_what_its_generator_writes() -> None:
    import runpy

    generator = runpy.run_path(str(REPO_ROOT / "deploy" / "grafana" / "dashboard.py"))
    assert (REPO_ROOT / "deploy" / "grafana" / "tasksage.json").read_text() == generator["render"](), (
        "run .venv/bin/python deploy/grafana/dashboard.py"
    )
