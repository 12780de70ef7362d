"""The API benchmark's load generator, run as its own process (`python -m streams.bench.api_load`,
its configuration as JSON on stdin) so its CPU is not the API's: closed-loop clients for a fixed time, then one JSON
line with the request count, errors and latency percentiles on stdout.

Each client is one keep-alive HTTP/1.1 connection written and read on asyncio streams, on uvloop.
On the benchmark's 2 cores the client shares the machine with the API and PostgreSQL, and
httpx cost about as much CPU per request as the API itself (2.4 ms against 2.1 ms, measured
on /v1/search), so a heavier client measured the client as much as the server."""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson
import uvloop


def percentile(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


class Connection:
    """One keep-alive HTTP/1.1 connection; answers are read by Content-Length or chunks."""

    def __init__(self, base: str, headers: dict[str, str]) -> None:
        url = urlsplit(base)
        self.host, self.port = url.hostname or "127.0.0.1", url.port or 80
        extra = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        self.head = f"Host: {self.host}:{self.port}\r\n{extra}"
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, method: str, target: str, body: bytes = b"") -> int:
        """The answer's status; its body is read and dropped."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        length = f"Content-Length: {len(body)}\r\n" if method == "POST" else ""
        self.writer.write(f"{method} {target} HTTP/1.1\r\n{self.head}{length}\r\n".encode() + body)
        head = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").lower()
        status = int(head[9:12])
        fields = dict(
            (name.strip(), value.strip())
            for name, _, value in (line.partition(":") for line in head.split("\r\n")[1:] if line)
        )
        if fields.get("transfer-encoding") == "chunked":
            while size := int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16):
                await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        else:
            await self.reader.readexactly(int(fields.get("content-length", "0")))
        if fields.get("connection") == "close":
            await self.close()
        return status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = self.reader = None


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

    async def client_loop() -> None:
        conn = Connection(config["base"], headers)
        try:
            while (now := time.perf_counter()) < stop_at:
                item = next(requests)
                started = time.perf_counter()
                status: int | str
                try:
                    if post:
                        status = await conn.request("POST", path, orjson.dumps(item))
                    else:
                        status = await conn.request("GET", f"{path}?{urlencode(item)}" if item else path)
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    await conn.close()  # counted, and the next request opens a new connection
                    status = "error"
                elapsed = time.perf_counter() - started
                if now >= warm_until:
                    latencies.append(elapsed)
                    statuses[str(status)] = statuses.get(str(status), 0) + 1
        finally:
            await conn.close()

    await asyncio.gather(*(client_loop() for _ in range(config["concurrency"])))
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
