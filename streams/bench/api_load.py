"""The API benchmark's load generator, run as its own process (`python -m streams.bench.api_load`,
its configuration as JSON on stdin) so its CPU is not the API's; one JSON line with the request
count, errors and latency percentiles on stdout. Two ways to drive:

- closed loop (`concurrency` clients, each sending its next request when the last is answered):
  the most the API can answer, where latency is mostly queueing (clients / throughput);
- open loop (`rate` requests a second, Poisson arrivals from a fixed seed, as wrk2 and k6's
  constant-arrival-rate do): the latency users see at that load. Latency runs from the moment a
  request was due, not when it was sent, so a stalled server or client cannot hide its own
  queue (no coordinated omission).

The clients share one aiohttp session (keep-alive connections, its C HTTP parser) on uvloop.
On the benchmark's 2 cores the client shares the machine with the API and PostgreSQL, and
httpx cost about as much CPU per request as the API itself (2.4 ms against 2.1 ms, measured
on /v1/search), so a heavier client measured the client as much as the server."""

from __future__ import annotations

import asyncio
import itertools
import random
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


class Load:
    """One run's requests (cycled), its measured window and what it saw."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.items = itertools.cycle(config.get("bodies") or config.get("params") or [None])
        # Several API processes (replicas on one machine): requests go to each in turn.
        self.urls = itertools.cycle(f"{base}{config['path']}" for base in config["bases"])
        self.post = config["method"] == "POST"
        self.warm_until = time.perf_counter() + config.get("warmup_s", 1.0)
        self.stop_at = self.warm_until + config["duration_s"]
        self.latencies: list[float] = []
        self.statuses: dict[str, int] = {}
        self.answered = 0  # warm-up included: what the API's CPU in the phase was spent on

    async def send(self, session: aiohttp.ClientSession, due: float) -> None:
        """One request; its latency counts from `due` when `due` falls in the measured window."""
        item, url = next(self.items), next(self.urls)
        status: int | str
        try:
            if self.post:
                answer = session.post(url, data=orjson.dumps(item))
            else:
                answer = session.get(f"{url}?{urlencode(item)}" if item else url)
            async with answer as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, OSError):
            status = "error"  # counted; the session opens a new connection for the next one
        self.answered += 1
        if due >= self.warm_until:
            self.latencies.append(time.perf_counter() - due)
            self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1


async def closed_loop(load: Load, session: aiohttp.ClientSession, concurrency: int) -> None:
    async def client() -> None:
        while (now := time.perf_counter()) < load.stop_at:
            await load.send(session, now)

    await asyncio.gather(*(client() for _ in range(concurrency)))


async def open_loop(load: Load, session: aiohttp.ClientSession, rate: float, seed: int) -> None:
    arrivals = random.Random(seed)
    due = time.perf_counter()
    in_flight: set[asyncio.Task[None]] = set()
    while (due := due + arrivals.expovariate(rate)) < load.stop_at:
        if (wait := due - time.perf_counter()) > 0:
            await asyncio.sleep(wait)
        task = asyncio.create_task(load.send(session, due))
        in_flight.add(task)
        task.add_done_callback(in_flight.discard)
    await asyncio.gather(*in_flight)


async def drive(config: dict[str, Any]) -> dict[str, Any]:
    """config: bases (one URL per API process), method, path, bodies (JSON documents, cycled) or params (cycled),
    duration_s, warmup_s, headers, and either concurrency (closed loop) or rate and seed (open
    loop, at most `concurrency` connections, default 256)."""
    load = Load(config)
    headers = {"Content-Type": "application/json", **config.get("headers", {})}
    rate = config.get("rate")
    concurrency = config.get("concurrency") or 256
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        if rate is None:
            await closed_loop(load, session, concurrency)
        else:
            await open_loop(load, session, float(rate), int(config.get("seed", 1)))
    latencies, statuses = sorted(load.latencies), load.statuses
    ok = sum(n for s, n in statuses.items() if s.startswith("2"))
    return {
        "requests": len(latencies),
        "answered_with_warmup": load.answered,
        "ok": ok,
        "statuses": statuses,
        "mode": "closed loop" if rate is None else "open loop",
        "concurrency": concurrency,
        "offered_per_s": rate,
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
