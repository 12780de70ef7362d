"""The API benchmark's load generator, run as its own process (`python -m streams.bench.api_load`,
its configuration as JSON on stdin) so its CPU is not the API's: closed-loop clients for a fixed time, then one JSON
line with the request count, errors and latency percentiles on stdout."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import Any

import httpx
import orjson


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


async def drive(config: dict[str, Any]) -> dict[str, Any]:
    """config: base, method, path, bodies (JSON documents, cycled) or params (cycled),
    concurrency, duration_s, warmup_s, headers."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    requests = itertools.cycle(config.get("bodies") or config.get("params") or [None])
    warm_until = time.perf_counter() + config.get("warmup_s", 1.0)
    stop_at = warm_until + config["duration_s"]
    limits = httpx.Limits(
        max_connections=config["concurrency"], max_keepalive_connections=config["concurrency"]
    )

    async def client_loop(client: httpx.AsyncClient) -> None:
        while (now := time.perf_counter()) < stop_at:
            item = next(requests)
            started = time.perf_counter()
            if config["method"] == "POST":
                r = await client.post(config["path"], content=orjson.dumps(item))
            else:
                r = await client.get(config["path"], params=item)
            elapsed = time.perf_counter() - started
            if now >= warm_until:
                latencies.append(elapsed)
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1

    headers = {"Content-Type": "application/json", **config.get("headers", {})}
    async with httpx.AsyncClient(
        base_url=config["base"], headers=headers, limits=limits, timeout=30
    ) as client:
        await asyncio.gather(*(client_loop(client) for _ in range(config["concurrency"])))
    latencies.sort()
    ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    return {
        "requests": len(latencies),
        "ok": ok,
        "statuses": statuses,
        "concurrency": config["concurrency"],
        "duration_s": config["duration_s"],
        "requests_per_s": round(len(latencies) / config["duration_s"], 1),
        "p50_ms": _ms(percentile(latencies, 0.50)),
        "p95_ms": _ms(percentile(latencies, 0.95)),
        "p99_ms": _ms(percentile(latencies, 0.99)),
        "max_ms": _ms(latencies[-1] if latencies else None),
    }


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 2)


def main() -> None:
    config = orjson.loads(sys.stdin.buffer.read())
    print(orjson.dumps(asyncio.run(drive(config))).decode())


if __name__ == "__main__":
    main()
