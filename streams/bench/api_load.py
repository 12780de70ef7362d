"""The API benchmark's load generator, run as its own process (`python -m streams.bench.api_load`,
its configuration as JSON on stdin) so its CPU is not the API's: closed-loop clients for a fixed time, then one JSON
line with the request count, errors and latency percentiles on stdout.

The clients share one aiohttp session (keep-alive connections, its C HTTP parser) on uvloop.
On the benchmark's 2 cores the client shares the machine with the API and PostgreSQL, and
httpx cost about as much CPU per request as the API itself (2.4 ms against 2.1 ms, measured
on /v1/search), so a heavier client measured the client as much as the server."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import uvloop


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
    headers = {"Content-Type": "application/json", **config.get("headers", {})}
    path, post = config["path"], config["method"] == "POST"

    async def client_loop(session: aiohttp.ClientSession) -> None:
        while (now := time.perf_counter()) < stop_at:
            item = next(requests)
            started = time.perf_counter()
            status: int | str
            try:
                if post:
                    answer = session.post(path, data=orjson.dumps(item))
                else:
                    answer = session.get(f"{path}?{urlencode(item)}" if item else path)
                async with answer as response:
                    await response.read()
                    status = response.status
            except (aiohttp.ClientError, OSError):
                status = "error"  # counted; the session opens a new connection for the next one
            elapsed = time.perf_counter() - started
            if now >= warm_until:
                latencies.append(elapsed)
                statuses[str(status)] = statuses.get(str(status), 0) + 1

    connector = aiohttp.TCPConnector(limit=config["concurrency"])
    async with aiohttp.ClientSession(config["base"], headers=headers, connector=connector) as session:
        await asyncio.gather(*(client_loop(session) for _ in range(config["concurrency"])))
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
    print(orjson.dumps(uvloop.run(drive(config))).decode())


if __name__ == "__main__":
    main()
