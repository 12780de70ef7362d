"""SIGTERM: the worker finishes (or hands back) its in-flight batch, publishes what it committed,
leaves the group and exits within shutdown_timeout_s; a restart continues without loss."""

from __future__ import annotations

import asyncio
import signal
import time

import asyncpg
import pytest

from streams.kafka import ensure_topics
from tests.faults.compare import compare, settle
from tests.faults.conftest import report
from tests.faults.flow import inbox_total, publish_paced, wait_for_progress
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.fake_openai import FakeOpenAIServer, Fault
from tests.support.processes import WorkerProcess, wait_for_log, worker_processes

pytestmark = pytest.mark.slow


async def _terminate(worker: WorkerProcess, timeout_s: float) -> tuple[int, float]:
    assert worker.process is not None
    started = time.monotonic()
    worker.process.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(worker.wait, timeout_s + 5)
    return code, time.monotonic() - started


async def _outbox(dsn: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval("SELECT count(*) FROM outbox"))
    finally:
        await conn.close()


async def test_sigterm_under_load_stops_in_time_and_a_restart_loses_nothing(
    fault_settings, endpoints, tmp_path
) -> None:
    settings = fault_settings(shutdown_timeout_s=8.0)
    planned = generate(51, WorkloadShape(events=2500, max_event_bytes=settings.max_event_bytes))
    truth = ground_truth(planned)
    await ensure_topics(settings, endpoints.bootstrap)
    worker = WorkerProcess(settings, tmp_path / "logs")
    with worker_processes(worker):
        worker.start()
        publishing = asyncio.create_task(publish_paced(settings, planned, duration_s=4))
        assert await wait_for_progress(endpoints.dsn, 0, timeout_s=60) is not None
        code, took = await _terminate(worker, settings.shutdown_timeout_s)
        left_in_outbox = await _outbox(endpoints.dsn)
        processed_before = await inbox_total(endpoints.dsn)
        await publishing
        worker.start()
        observed, _ = await settle(endpoints.dsn, truth, timeout_s=120)
    verdict = compare(truth, observed)
    report("sigterm-under-load", exit_code=code, shutdown_s=round(took, 2), processed_before=processed_before)
    assert code == 0, worker.tail()
    assert took < settings.shutdown_timeout_s
    assert "worker stopped" in worker.log_text()
    assert left_in_outbox == 0, "committed outputs were not published before exiting"
    assert verdict.problems == [], "\n".join(verdict.problems)
    assert (verdict.lost, verdict.doubled) == (0, 0)


async def test_sigterm_while_waiting_on_a_failing_provider_hands_the_batch_back(
    fault_settings, endpoints, tmp_path
) -> None:
    fake = FakeOpenAIServer(default_dimension=1536).start()
    settings = fault_settings(
        shutdown_timeout_s=6.0,
        embedder="openai",
        openai_base_url=fake.base_url,
        embedding_model="text-embedding-3-small",
        embedding_dimension=64,
        embed_max_retries=0,
        embed_circuit_reset_s=0.5,
    )
    planned = generate(52, WorkloadShape(events=400, hostile_share=0, duplicate_share=0))
    truth = ground_truth(planned)
    await ensure_topics(settings, endpoints.bootstrap)
    worker = WorkerProcess(settings, tmp_path / "logs")
    try:
        with worker_processes(worker):
            worker.start()
            await wait_for_log(worker, "partitions assigned")
            fake.inject(Fault.SERVER_ERROR, 100_000)  # down for good, as far as this run can tell
            await publish_paced(settings, planned, duration_s=0.5)
            await wait_for_log(worker, "retrying topic=")
            code, took = await _terminate(worker, settings.shutdown_timeout_s)
            fake.clear_faults()
            worker.start()
            observed, _ = await settle(endpoints.dsn, truth, timeout_s=120)
    finally:
        fake.stop()
    verdict = compare(truth, observed)
    report("sigterm-during-retries", exit_code=code, shutdown_s=round(took, 2))
    assert code == 0, worker.tail()
    assert took < settings.shutdown_timeout_s
    assert "in-flight batch handed back uncommitted" in worker.log_text()
    assert verdict.problems == [], "\n".join(verdict.problems)
    assert (verdict.lost, verdict.doubled) == (0, 0)
