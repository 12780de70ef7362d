"""The pipeline beside three loops that each leave parts out (raw aiokafka, the no-op worker,
the database loop): the ratios say which part of the cost is the pipeline's own."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from pathlib import Path
from typing import Any

from processors.postgres import bench_store
from streams.bench.probes import PositionPoller
from streams.bench.report import (
    NOOP_TARGET,
)
from streams.bench.run import (
    NOOP_COMMAND,
    WorkerProcess,
    profile_summary,
    sampled,
    settings_env,
)
from streams.bench.stats import ratio
from streams.bench.workload import BenchWorkload
from streams.kafka import ensure_topics
from streams.settings import Settings

# Raw aiokafka / no-op worker runs, alternated (see _references).
REFERENCE_PAIRS = 3


async def _noop_run(
    settings: Settings,
    overrides: dict[str, Any],
    work_dir: Path,
    pool: Any,
    total: int,
    group_suffix: str,
    py_spy: str | None = None,
    profile_path: Path | None = None,
) -> tuple[int, float]:
    """The no-op worker drains the input topics under a consumer group of its own; (events,
    seconds) from its first visible progress. With py_spy, sampled into profile_path."""
    from streams.bench.stats import progress_rate

    topics = list(settings.input_topics.values())
    group = settings.consumer_group + group_suffix
    env = settings_env({**overrides, "consumer_group": group, "snapshot_interval_s": 3600})
    noop = WorkerProcess(NOOP_COMMAND, env, work_dir / f"noop-worker{group_suffix}.log")
    poller = PositionPoller(pool, group, interval_s=0.02)
    poller.start()
    noop.start()
    deadline = time.monotonic() + max(120.0, total / 200)
    sampling = (
        sampled(py_spy, noop.pid, profile_path) if py_spy and profile_path else contextlib.nullcontext()
    )
    try:
        async with sampling:
            while time.monotonic() < deadline and sum(poller.committed(t) for t in topics) < total:
                if not noop.alive():
                    raise RuntimeError(f"the no-op worker exited:\n{noop.log_tail()}")
                await asyncio.sleep(0.05)
    finally:
        noop.stop()
        await poller.stop()
    samples = [(at, sum(v for (t, _), v in seen.items() if t in topics)) for at, seen in poller.samples]
    return progress_rate(samples)


async def compare_references(
    settings: Settings,
    overrides: dict[str, Any],
    work_dir: Path,
    pool: Any,
    bootstrap: str,
    report: dict[str, Any],
    workload: BenchWorkload,
    py_spy: str | None = None,
) -> dict[str, Any]:
    """The pipeline next to three loops that each leave parts out:

    - raw aiokafka: consume every input record and produce it again (the broker and client alone);
    - the no-op worker: the real worker with processors that only save positions and echo;
    - the database loop (streams/bench/database.py): fresh events of each stream, pre-decoded,
      straight to the stream's processor in full batches, no Kafka; the same SQL the pipeline
      runs per event, timed per statement by asyncpg's query logger.

    The Kafka loops drain the measured input topics from offset 0; the database loop writes
    events of its own ("dbref" ids) under its own consumer group. Ratios are the pipeline's
    full-speed throughput over each loop's.
    """
    from streams.bench.database import METHOD as DATABASE_METHOD
    from streams.bench.database import database_loop
    from streams.bench.reference_loops import NOOP_ECHO_SUFFIX, raw_kafka_loop

    topics = list(settings.input_topics.values())
    async with pool.acquire() as conn:
        total = await bench_store.consumed(conn, settings.consumer_group, topics)
    out_topic = settings.topic_task_schedules + ".raw-echo"
    await ensure_topics(settings, bootstrap, [out_topic, *(t + NOOP_ECHO_SUFFIX for t in topics)])
    # Each loop drains ~30k records in about a second, so one run swings with whatever else the
    # machine does: alternate the two loops and keep the median of the paired ratios.
    raw_runs: list[float | None] = []
    noop_runs: list[float | None] = []
    for run in range(REFERENCE_PAIRS):
        raw_events, raw_s = await raw_kafka_loop(settings, bootstrap, topics, out_topic, total)
        raw_runs.append(raw_events / raw_s if raw_s else None)
        noop_events, noop_s = await _noop_run(settings, overrides, work_dir, pool, total, f"-noop{run}")
        noop_runs.append(noop_events / noop_s if noop_s else None)
    pair_ratios = [
        r for r in (ratio(n, w) for n, w in zip(noop_runs, raw_runs, strict=True)) if r is not None
    ]
    raw_eps = _median([r for r in raw_runs if r is not None])
    noop_eps = _median([n for n in noop_runs if n is not None])
    noop_ratio = _median(pair_ratios)
    if py_spy and (noop_ratio or 0.0) < NOOP_TARGET:
        # Again under py-spy (a fresh group reads everything again), so the measured run above
        # carries no sampling overhead.
        path = work_dir / "profile-noop.txt"
        events, seconds = await _noop_run(
            settings, overrides, work_dir, pool, total, "-noop-profile", py_spy, path
        )
        report.setdefault("profiles", {})["no-op pipeline"] = {
            **profile_summary(path),
            "throughput_eps": round(events / seconds, 1) if seconds else None,
        }
    full = {s: phases["full"]["throughput_eps"] for s, phases in report["streams"].items()}
    run = report["run"]
    database = await database_loop(settings, workload, run["history"], run["events_per_phase"], list(full))
    return {
        "records": total,
        "raw_kafka_eps": None if raw_eps is None else round(raw_eps, 1),
        "noop_pipeline_eps": None if noop_eps is None else round(noop_eps, 1),
        "noop_vs_raw_kafka": None if noop_ratio is None else round(noop_ratio, 3),
        "raw_kafka_runs_eps": [None if r is None else round(r, 1) for r in raw_runs],
        "noop_pipeline_runs_eps": [None if n is None else round(n, 1) for n in noop_runs],
        "noop_vs_raw_kafka_runs": pair_ratios,
        "pipeline_vs_raw_kafka": {s: ratio(v, raw_eps) for s, v in full.items()},
        "method": (
            "each loop drains all three input topics from offset 0; rate from first visible progress; "
            f"{REFERENCE_PAIRS} raw/no-op pairs run alternately (each no-op run under a fresh consumer "
            "group, claiming every event afresh): eps are medians, the ratio the median of the pair ratios"
        ),
        "database_loop": database,
        "pipeline_vs_database_loop": {s: ratio(v, database[s]["eps"]) for s, v in full.items()},
        "database_loop_method": DATABASE_METHOD,
    }


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None
