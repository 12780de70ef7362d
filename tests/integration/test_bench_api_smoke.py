"""`tasksage bench-api` end to end at a tiny size: preload, the API in its own process, the
load generator in another, and a report whose figures add up. (Speed targets are the
benchmark's business, never a test's.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.bench.api import TARGETS, run_bench_api
from streams.settings import Settings


@pytest.mark.slow
async def test_bench_api_reports_both_routes(tmp_path: Path) -> None:
    settings = Settings.model_validate({"data_dir": tmp_path / "data"})
    report = await run_bench_api(
        settings, history=200, messages=100, duration_s=2.0, concurrency=2, rate=50.0, api_processes=2
    )
    assert report["run"]["api_processes"] == 2
    assert report["preload"]["tasks"] == 200 and report["preload"]["messages"] == 100
    for route in ("recommendations", "search"):
        for phase, mode in ((route, "closed loop"), (f"{route}_at_rate", "open loop")):
            figures = report[phase]
            assert figures["mode"] == mode
            assert figures["requests"] > 0
            assert figures["statuses"] == {"200": figures["requests"]}
            assert figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
            assert figures["answered_with_warmup"] >= figures["requests"]  # warm-up answers too
            cpu = figures["cpu_ms_per_request"]
            assert set(cpu) == {"api", "postgres", "load generator", "other processes"}
            assert cpu["api"] > 0 and cpu["postgres"] > 0 and cpu["load generator"] > 0
        assert report[route]["concurrency"] == 2
        assert report[f"{route}_at_rate"]["offered_per_s"] == 50.0
    # 50 requests a second is below the target rate, so the latency targets cannot count as met.
    assert report["met"]["recommendations_p95_ms"] is False
    assert report["met"]["search_p95_ms"] is False
    assert set(report["met"]) == set(TARGETS)
