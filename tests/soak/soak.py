"""Soak run (not part of `make test`): mixed events at a steady rate for a long time, sampling the
bookkeeping tables, to show that inbox, held results, outbox and anchors stay flat once the
replay window has passed while the history tables grow with the events.

    .venv/bin/python -m tests.soak.soak --minutes 30 --rate 40 --window-s 300 --broker kafka

Runs its own embedded broker and PostgreSQL in a temporary directory and a worker in this
process; prints one JSON line per sample and a summary (JSON) at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from processors.postgres import retention
from streams.embedded import free_port
from streams.runtime import EmbeddedServices, Endpoints, open_runtime
from streams.settings import REPO_ROOT, Settings
from streams.worker.loop import Worker
from tests.faults.flow import topic_of
from tests.faults.workload import WorkloadShape, generate
from tests.support.processes import RawProducer

HISTORY = ("tasks", "executions", "messages", "predictions")


async def sample(pool: Any) -> dict[str, int]:
    async with pool.acquire() as conn:
        rows = await retention.bookkeeping_rows(conn)
        for table in HISTORY:
            rows[table] = int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
        rows["database_bytes"] = int(await conn.fetchval("SELECT pg_database_size(current_database())"))
    return rows


async def publish(settings: Settings, rate: int, seconds: float, seed: int, sent: list[int]) -> None:
    planned = generate(seed, WorkloadShape(events=int(rate * seconds), hostile_share=0.01))
    per_tick = max(1, rate // 5)
    async with RawProducer(settings) as producer:
        started = time.monotonic()
        for i in range(0, len(planned), per_tick):
            part = planned[i : i + per_tick]
            await producer.send([(topic_of(settings, p.stream), p.key, p.value) for p in part])
            sent[0] += len(part)
            await asyncio.sleep(max(0.0, started + (i + per_tick) / rate - time.monotonic()))


def summary(samples: list[dict[str, Any]], window_s: float) -> dict[str, Any]:
    """Per table: its value when the window first passed, and the min/max after that."""
    after = [s for s in samples if s["t_s"] >= window_s + 60]
    if not after:
        return {"note": "the run was shorter than the replay window + 60 s: nothing to judge"}
    out: dict[str, Any] = {}
    for table in ("inbox", "held_results", "outbox", "partition_anchors", *HISTORY):
        values = [s[table] for s in after]
        out[table] = {"at_window": values[0], "min": min(values), "max": max(values), "end": values[-1]}
    events = samples[-1]["sent"]
    out["database_bytes_per_million_events"] = int(samples[-1]["database_bytes"] / max(1, events) * 1_000_000)
    return out


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="tasksage-soak-"))
    base = Settings(
        data_dir=work,
        embedded_broker=args.broker,
        kafka_jars_dir=REPO_ROOT / ".tasksage",
        metrics_port=0,
        replay_window_days=args.window_s / 86_400,
        held_result_timeout_s=args.window_s,
        held_result_check_interval_s=10.0,
        retention_interval_s=10.0,
        topic_partitions=4,
    )
    async with EmbeddedServices(base, kafka_port=free_port()) as services:
        assert services.endpoints is not None
        ends = services.endpoints
        settings = base.model_copy(update={"kafka_bootstrap_servers": ends.bootstrap})
        runtime = await open_runtime(settings, Endpoints(ends.bootstrap, ends.dsn))
        worker = Worker(runtime)
        ready = asyncio.Event()
        running = asyncio.create_task(worker.run(ready))
        await asyncio.wait_for(ready.wait(), 120)
        sent = [0]
        seconds = args.minutes * 60
        publishing = asyncio.create_task(publish(settings, args.rate, seconds, args.seed, sent))
        samples: list[dict[str, Any]] = []
        started = time.monotonic()
        try:
            while not publishing.done():
                await asyncio.sleep(args.sample_s)
                row = {
                    "t_s": round(time.monotonic() - started),
                    "sent": sent[0],
                    **await sample(runtime.pool),
                }
                samples.append(row)
                print(json.dumps(row), flush=True)
            await publishing
        finally:
            worker.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(running, 60)
            await runtime.close()
    result = {"broker": args.broker, "rate": args.rate, "minutes": args.minutes, "window_s": args.window_s}
    result.update(summary(samples, args.window_s))
    print(json.dumps({"summary": result}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--rate", type=int, default=40, help="events per second")
    parser.add_argument(
        "--window-s", type=float, default=300.0, help="replay window (and held-result timeout)"
    )
    parser.add_argument("--sample-s", type=float, default=30.0)
    parser.add_argument("--broker", choices=("tansu", "kafka"), default="kafka")
    parser.add_argument("--seed", type=int, default=7)
    asyncio.run(main(parser.parse_args()))
    sys.exit(0)
