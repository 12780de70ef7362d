"""Decode micro-benchmark: microseconds per event for each input stream's decoder alone.

    .venv/bin/python -m streams.bench.decode [--events N] [--rounds R] [--json PATH]

Bytes -> typed event (size and nesting limits, fast path, records built) on the benchmark
workload's events, no broker or database: the figure to compare before and after a change to
processors/contracts/. Best and median of R rounds over N events per stream, so a busy machine
shows as a gap between the two rather than as a slower best.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from processors.contracts import encode
from processors.contracts.inputs import DECODERS
from streams.bench.workload import BenchWorkload

MAX_BYTES = 1_000_000


def payloads(events: int, seed: int = 42) -> dict[str, list[bytes]]:
    """The encoded events of each input stream, as the benchmark workload publishes them."""
    workload = BenchWorkload("decode", seed=seed)
    builders: dict[str, Callable[[int], Any]] = {
        "task-created": lambda i: workload.task_created("d", i),
        "execution-result": lambda i: workload.execution_result("d", i, events),
        "message-ingested": lambda i: workload.message("d", i),
    }
    return {name: [encode(build(i)) for i in range(events)] for name, build in builders.items()}


def measure(events: int, rounds: int) -> dict[str, dict[str, float]]:
    """Per stream: best and median microseconds per event over `rounds` passes."""
    report: dict[str, dict[str, float]] = {}
    for name, batch in payloads(events).items():
        decode = DECODERS[name]
        per_event = []
        for _ in range(rounds):
            start = time.perf_counter()
            for payload in batch:
                decode(payload, MAX_BYTES)
            per_event.append((time.perf_counter() - start) / len(batch) * 1e6)
        report[name] = {"best_us": min(per_event), "median_us": statistics.median(per_event)}
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=2000, help="events per stream (default 2000)")
    parser.add_argument("--rounds", type=int, default=7, help="passes over them (default 7)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    report = measure(args.events, args.rounds)
    for name, figures in report.items():
        print(
            f"{name:18s} best {figures['best_us']:6.2f} us  median {figures['median_us']:6.2f} us per event"
        )
    if args.json:
        args.json.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2) + b"\n")


if __name__ == "__main__":
    main()
