"""The worker's metrics and health endpoints over real HTTP: the health semantics (503 with
the reason while waiting, notices do not fail it), and 404/405 for anything else."""

from __future__ import annotations

import httpx

from streams.embedded import free_port
from streams.metrics import Health, MetricsServer


async def test_health_metrics_and_refusals() -> None:
    health = Health()
    off = MetricsServer(0, health)
    await off.start()
    assert off.server is None  # port 0 turns the server off
    server = MetricsServer(free_port(), health, host="127.0.0.1")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            r = await client.get("/healthz")
            assert (r.status_code, r.text) == (503, "waiting: worker: starting\n")
            assert (await client.get("/readyz")).status_code == 503
            health.set_ok("worker")
            health.notice("log", "partition 0 was reset")
            r = await client.get("/healthz")
            assert (r.status_code, r.text) == (200, "ok\nnotice: partition 0 was reset\n")
            r = await client.get("/metrics")
            assert r.status_code == 200 and "tasksage_healthy 1.0" in r.text
            r = await client.post("/tasks/predict")
            assert r.status_code == 404 and r.json()["error"]["code"] == "404"
            r = await client.post("/metrics")
            assert r.status_code == 405 and set(r.headers["allow"].split(", ")) == {"GET", "HEAD"}
    finally:
        await server.stop()
