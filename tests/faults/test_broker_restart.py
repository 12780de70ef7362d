"""A broker restart, on each broker kind.

Tansu keeps its logs in memory: after a restart the worker must notice, say so, and read the
new logs from their start instead of stalling at its old positions. Apache Kafka keeps its
log: the worker must resume at its stored positions, with no false "log lost" alarm, nothing
reset and nothing applied twice."""

from __future__ import annotations

import asyncio
import re
import urllib.request

import pytest

from streams.embedded import free_port
from streams.kafka import ensure_topics
from tests.faults.compare import compare, settle
from tests.faults.conftest import report
from tests.faults.flow import publish_paced
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.processes import WorkerProcess, wait_for_log, worker_processes

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def _total(scraped: str, name: str) -> float:
    return sum(float(v) for v in re.findall(rf"^{name}\{{[^}}]*\}} (\S+)$", scraped, re.M))


async def test_broker_restart_loses_nothing_and_applies_nothing_twice(
    fault_settings, endpoints, tmp_path, broker_kind, broker_factory
) -> None:
    keeps_log = broker_kind == "kafka"
    broker = broker_factory(tmp_path / "broker")
    broker.start()
    port = free_port()
    # Four partitions: what Tansu gives topics it creates on first use after the restart.
    settings = fault_settings(kafka_bootstrap_servers=broker.bootstrap, topic_partitions=4, metrics_port=port)
    planned = generate(41, WorkloadShape(events=1200, hostile_share=0.0, duplicate_share=0.0))
    first, second = planned[:700], planned[700:]
    # Upstream re-publishes part of what the broker lost: the same events, the same ids.
    again = [p for p in first if p.stream == "task-created"][:100]
    worker = WorkerProcess(settings, tmp_path / "logs")
    try:
        with worker_processes(worker):
            await ensure_topics(settings, broker.bootstrap)
            worker.start()
            await publish_paced(settings, first, duration_s=1)
            truth_first = ground_truth(first)
            await settle(endpoints.dsn, truth_first, timeout_s=90)
            assert worker.log_text().count("broker log") == 0, "false alarm before any restart"

            broker.stop()
            broker.start()  # Tansu: empty, every topic, offset and group is gone; Kafka: as it was
            await ensure_topics(settings, broker.bootstrap)
            await publish_paced(settings, second + again, duration_s=1)
            truth = ground_truth(first + second + again)
            observed, waited = await settle(endpoints.dsn, truth, timeout_s=90)
            if not keeps_log:
                await wait_for_log(worker, "broker log")
            status, health = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
            _, scraped = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
            log = worker.log_text()
    finally:
        broker.stop()
    verdict = compare(truth, observed)
    resets = sum(float(v) for v in re.findall(r"^tasksage_log_resets_total\{[^}]*\} (\S+)$", scraped, re.M))
    report(
        "broker-restart",
        broker=broker_kind,
        faults="broker restart" + ("" if keeps_log else " (memory storage: all logs lost)"),
        published=len(first) + len(second) + len(again),
        lost=verdict.lost,
        doubled=verdict.doubled,
        partitions_reset=int(resets),
        recovery_s=round(waited, 2),
    )
    assert verdict.problems == [], "\n".join(verdict.problems)
    assert (verdict.lost, verdict.doubled) == (0, 0)
    if keeps_log:
        # The log survived: the stored positions hold, no alarm, no reset.
        assert "broker log" not in log, log[-3000:]
        assert status == 200 and "notice: broker log" not in health, health
        assert resets == 0
        # Every record was read once: none again after the restart, and only the re-published
        # ones were duplicates.
        assert _total(scraped, "tasksage_events_in_total") == len(first) + len(second) + len(again)
        assert _total(scraped, "tasksage_events_duplicate_total") == len(again)
        return
    # Said clearly: which topic and partition, the stored position, what the log holds now.
    assert re.search(
        r"broker log (lost|replaced): \S+\[\d+\] stored position \d+, log offsets \d+\.\.\d+", log
    )
    assert status == 200 and "notice: broker log" in health, health
    assert resets >= 1
