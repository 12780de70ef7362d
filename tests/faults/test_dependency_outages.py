"""PostgreSQL restarts and the embedding provider fails (429, 500, timeouts) while events flow:
the worker waits and reports itself unhealthy instead of dropping, and nothing is lost or doubled."""

from __future__ import annotations

import asyncio
import re
import time
import urllib.error
import urllib.request

import pytest

from streams.embedded import free_port
from streams.kafka import ensure_topics
from tests.faults.compare import compare, counts_by, dead_letters, hostile_sources, schedules, settle
from tests.faults.conftest import EVENTS, SEEDS, report
from tests.faults.flow import publish_paced
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.fake_openai import FakeOpenAIServer, Fault
from tests.support.processes import ControlledPostgres, WorkerProcess, wait_for_log, worker_processes

pytestmark = pytest.mark.slow


def healthz(port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
    except OSError as e:
        return 0, str(e)


class HealthWatch:
    """Polls /healthz in the background and keeps every distinct answer."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.seen: list[tuple[float, int, str]] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            status, body = await asyncio.to_thread(healthz, self.port)
            # "waiting: pipeline: EmbeddingUnavailable: ...; postgresql: OSError: ...": keep the
            # components and error classes, not the changing details.
            found = re.findall(r"\b(pipeline|postgresql|broker|worker): (\w+)", body)
            summary = ", ".join(f"{c}: {e}" for c, e in found) or body.strip()
            if not self.seen or self.seen[-1][1:] != (status, summary):
                self.seen.append((time.monotonic(), status, summary))
            await asyncio.sleep(0.1)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        assert self._task is not None
        self._task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await self._task

    def unhealthy_with(self, text: str) -> bool:
        return any(status == 503 and text in body for _, status, body in self.seen)


async def test_database_restart_and_embedding_errors_lose_nothing(fault_settings, tmp_path) -> None:
    seed = SEEDS[0] + 200
    pg = ControlledPostgres(tmp_path / "pg")
    dsn = pg.start()
    fake = FakeOpenAIServer(default_dimension=1536, hang_s=2.5).start()
    port = free_port()
    settings = fault_settings(
        database_url=dsn,
        embedder="openai",
        openai_base_url=fake.base_url,
        embedding_model="text-embedding-3-small",
        embedding_dimension=256,
        embed_timeout_s=1.0,
        embed_max_retries=2,
        embed_circuit_reset_s=1.0,
        metrics_port=port,
    )
    planned = generate(seed, WorkloadShape(events=EVENTS, max_event_bytes=settings.max_event_bytes))
    truth = ground_truth(planned)
    worker = WorkerProcess(settings, tmp_path / "logs")
    watch = HealthWatch(port)
    faults: list[str] = []
    try:
        assert settings.kafka_bootstrap_servers
        await ensure_topics(settings, settings.kafka_bootstrap_servers)
        with worker_processes(worker):
            worker.start()
            await wait_for_log(worker, "partitions assigned")
            watch.start()
            publishing = asyncio.create_task(publish_paced(settings, planned, duration_s=16))
            await asyncio.sleep(1)
            # The provider fails: server errors, rate limits with Retry-After, requests that hang.
            fake.inject(Fault.SERVER_ERROR, 5)
            fake.inject(Fault.RATE_LIMIT, 4, retry_after_s=0.3)
            fake.inject(Fault.HANG, 2)
            faults.append("embedding provider: 5 x HTTP 500, 4 x HTTP 429, 2 x timeout")
            await asyncio.sleep(7)
            # PostgreSQL goes away mid-stream (fast shutdown drops every connection), then returns.
            down_at = time.monotonic()
            await asyncio.to_thread(pg.stop_server)
            await asyncio.sleep(4)
            await asyncio.to_thread(pg.start_server)
            faults.append("PostgreSQL fast shutdown, 4 s down, restart")
            placed = await publishing
            observed, drained_s = await settle(dsn, truth, timeout_s=240)
            healthy_again_s = None
            for _ in range(100):
                status, _ = await asyncio.to_thread(healthz, port)
                if status == 200:
                    healthy_again_s = time.monotonic() - down_at
                    break
                await asyncio.sleep(0.1)
            await watch.stop()
            letters, letter_copies = await dead_letters(settings)
            schedule_ids, repeats = await schedules(settings)
            alive = worker.alive and worker.starts == 1
    finally:
        fake.stop()
        pg.close()
    verdict = compare(truth, observed, letters, hostile_sources(planned, placed))
    report(
        "dependency-outages",
        seed=seed,
        faults="; ".join(faults),
        published=len(planned),
        by_kind=counts_by(planned),
        lost=verdict.lost,
        doubled=verdict.doubled,
        dead_lettered=len(letters),
        held=len(observed.held),
        recovery_s=None if healthy_again_s is None else round(healthy_again_s, 2),
        drain_after_publish_s=round(drained_s, 1),
        repeated_outputs=repeats + letter_copies,
        health_answers=[(status, summary) for _, status, summary in watch.seen],
    )
    assert verdict.problems == [], "\n".join(verdict.problems)
    assert (verdict.lost, verdict.doubled) == (0, 0)
    assert schedule_ids == truth.predictions
    assert alive, "the worker restarted or died"
    assert watch.unhealthy_with("postgresql"), watch.seen
    assert watch.unhealthy_with("EmbeddingUnavailable"), watch.seen
    assert healthy_again_s is not None, "/healthz did not return to 200"
