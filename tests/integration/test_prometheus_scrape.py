"""A real Prometheus scrapes a real `tasksage worker`, loads the alert rules and evaluates every alert
expression and every Grafana panel query: each must parse, evaluate, and name only metrics the
worker exposes, so no rule or panel watches a metric that does not exist.

The HTTP API's metrics (prefix `tasksage_api_`) are checked only when an API is scraped. This test
runs a worker alone, so it reports the API panels' names as unchecked rather than failing on them;
any other missing name fails.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from processors.contracts import ExecutionResult, MessageIngested, TaskCreated
from streams.client import TasksagePublisher
from streams.embedded import free_port
from streams.kafka import ensure_topics
from tests.support.processes import WorkerProcess, worker_processes
from tests.support.promql import expand_macros, known_names, metric_names
from tests.support.tools import PROMETHEUS, REPO_ROOT, require
from tests.support.topics import send_raw
from tests.support.waiting import eventually

ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "tasksage.json"
API_PREFIX = "tasksage_api_"


# Straight to loopback, whatever proxy the environment names.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class PrometheusAPI:
    def __init__(self, port: int) -> None:
        self.root = f"http://127.0.0.1:{port}"
        self.base = f"{self.root}/api/v1/"

    def ready(self) -> bool:
        try:
            with _OPENER.open(self.root + "/-/ready", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def get(self, path: str, **params: str) -> Any:
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with _OPENER.open(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as exc:  # 400/422 carry the error in the same JSON shape
            body = json.load(exc)
        return body

    def query(self, expr: str) -> list[dict[str, Any]]:
        body = self.get("query", query=expand_macros(expr))
        assert body["status"] == "success", f"{expr!r}: {body.get('error')}"
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str) -> float | None:
        result = self.query(expr)
        return float(result[0]["value"][1]) if result else None


@contextmanager
def running_prometheus(tmp_path: Path, target_port: int) -> Iterator[PrometheusAPI]:
    """Prometheus scraping 127.0.0.1:`target_port` every second, with the alert rules loaded."""
    binary = require(PROMETHEUS)
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(ALERTS)],
        "scrape_configs": [
            {"job_name": "tasksage", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            str(binary),
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = PrometheusAPI(port)
    try:
        deadline = time.monotonic() + 60
        while not api.ready():
            assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus was not ready within 60 s"
            time.sleep(0.2)
        yield api
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        log.close()


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every target, rows' nested panels included."""
    found: list[tuple[str, str]] = []

    def walk(panels: list[dict[str, Any]]) -> None:
        for panel in panels:
            walk(panel.get("panels", []))
            found.extend((panel["title"], t["expr"]) for t in panel.get("targets", []))

    walk(json.loads(DASHBOARD.read_text())["panels"])
    return found


def alert_queries() -> list[tuple[str, str]]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [(rule["alert"], rule["expr"]) for group in groups for rule in group["rules"]]


async def feed_one_of_each(settings: Any, prom: PrometheusAPI) -> None:
    """A task, then its result, a message and one malformed record: every labelled series appears.

    The result goes out once the task's schedule is scraped, so it is applied, not held.
    """
    now = datetime.now(UTC)

    async def scraped(expr: str, want: float) -> None:
        async def probe() -> float | None:
            return await asyncio.to_thread(prom.value, expr)

        await eventually(probe, lambda v: v == want, timeout_s=90, interval_s=0.5)

    async with TasksagePublisher(settings) as publisher:
        await publisher.publish_task(
            TaskCreated(
                event_id="t-1", occurred_at=now, task_id="T1", description="fix the login page", kind="code"
            )
        )
        await scraped('sum(tasksage_schedule_decisions_total{basis="cold_start"})', 1.0)
        await publisher.publish_result(
            ExecutionResult(
                event_id="r-1",
                occurred_at=now,
                task_id="T1",
                agent="coder",
                model="small",
                success=True,
                finished_at=now,
                duration_ms=1500.0,
            )
        )
        await publisher.publish_message(
            MessageIngested(
                event_id="m-1",
                occurred_at=now,
                message_id="M1",
                source="chat",
                author="ada",
                content="login broken",
            )
        )
    await send_raw(settings, settings.topic_task_created, [(b"bad", b"{not json")])
    for topic in settings.input_topics.values():
        await scraped(f'tasksage_events_processed_total{{topic="{topic}"}}', 1.0)
    await scraped(f'tasksage_events_dead_lettered_total{{topic="{settings.topic_task_created}"}}', 1.0)


async def test_alert_and_dashboard_queries_name_only_metrics_a_running_worker_exposes(
    make_settings, endpoints, tmp_path
) -> None:
    require(PROMETHEUS)
    settings = make_settings(metrics_port=free_port(), session_timeout_ms=2000)
    await ensure_topics(settings, endpoints.bootstrap)
    worker = WorkerProcess(settings, tmp_path / "logs")
    with worker_processes(worker.start()), running_prometheus(tmp_path, settings.metrics_port) as prom:
        await feed_one_of_each(settings, prom)
        scraped = await asyncio.to_thread(prom.get, "label/__name__/values")
        metadata = await asyncio.to_thread(prom.get, "metadata")
        known = known_names(metadata["data"], scraped["data"])

        # What the worker did, as Prometheus saw it.
        assert prom.value('up{job="tasksage"}') == 1.0
        assert prom.value('sum(tasksage_schedule_decisions_total{basis="cold_start"})') == 1.0
        assert (
            prom.value(f'tasksage_events_dead_lettered_total{{topic="{settings.topic_task_created}"}}') == 1.0
        )

        unchecked: dict[str, set[str]] = {}
        missing: dict[str, set[str]] = {}
        api_scraped = any(name.startswith(API_PREFIX) for name in known)
        queries = [("alert " + n, e) for n, e in alert_queries()] + [
            ("panel " + t, e) for t, e in dashboard_queries()
        ]
        for where, expr in queries:
            prom.query(expr)  # parses and evaluates, or fails with Prometheus's error
            names = metric_names(expr)
            assert names, f"{where}: {expr!r} selects no metric"
            absent = names - known
            if not api_scraped and absent and all(n.startswith(API_PREFIX) for n in absent):
                unchecked[where] = absent
            elif absent:
                missing[where] = absent
        assert not missing, f"queries naming metrics the worker does not expose: {missing}"
        # Only the HTTP API row may go unchecked here, and only while no API is scraped.
        assert {w for w in unchecked} == {f"panel {t}" for t, e in dashboard_queries() if API_PREFIX in e}
        print(f"unchecked without an API in the scrape: {sorted(unchecked)}")

        # Prometheus itself evaluated every rule of the file without an error.
        async def rules() -> list[dict[str, Any]]:
            body = await asyncio.to_thread(prom.get, "rules")
            return [r for g in body["data"]["groups"] for r in g["rules"]]

        loaded = await eventually(
            rules,
            lambda rs: (
                len(rs) == len(alert_queries())
                and all(r.get("lastEvaluation", "0001").startswith("20") for r in rs)
            ),
            timeout_s=30,
            interval_s=0.5,
        )
        assert {r["name"] for r in loaded} == {n for n, _ in alert_queries()}
        assert all(r["health"] == "ok" for r in loaded), [(r["name"], r.get("lastError")) for r in loaded]
        # A healthy worker with one dead letter: only the dead-letter alert may fire (the others
        # have a `for` longer than this test; the latency one may be pending, since the first task
        # waited for the group join), and the worker is neither down nor waiting.
        state = {r["name"]: r["state"] for r in loaded}
        assert {name for name, s in state.items() if s == "firing"} <= {"TasksageDeadLetters"}, state
        assert state["TasksageWorkerDown"] == state["TasksageWaitingOnDependency"] == "inactive", state
