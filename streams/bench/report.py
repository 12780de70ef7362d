"""The benchmark's targets and how a report is checked against them (pure)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from processors.contracts.inputs import STREAM_NAMES

# Offered rates of the "rated" phase: each stream's throughput target (README "Performance").
TARGET_RATES = {"execution-result": 3000.0, "task-created": 500.0, "message-ingested": 500.0}
LIGHT_RATE = 25.0
# Streams measured again at half their full-speed rate: the latency target's load on any machine.
HALF_RATE_STREAMS = ("task-created",)
# Task phases run first: some results of the result phases are the first outcome of those tasks.
STREAMS = STREAM_NAMES
# Share of results that are a task's first outcome (steady state: one in six at 3,000 results/s
# and 500 tasks/s); the rest are further outcomes of preloaded tasks.
FIRST_OUTCOME_EVERY = 6
# The share of the raw aiokafka loop's rate the no-op pipeline must reach: the runtime's own
# overhead (consume, positions, publish) may cost at most half of what the client alone does.
NOOP_TARGET = 0.5
# Each stream's full-speed rate as a share of the raw aiokafka loop's in the same run: machines
# of this kind differ about 2x from run to run, and a ratio holds on any of them.
RAW_RATIO_TARGETS = {"task-created": 0.04, "execution-result": 0.15, "message-ingested": 0.04}


@dataclass(frozen=True, slots=True)
class TargetCheck:
    name: str
    target: str
    measured: float | None
    met: bool | None  # None: not measured in this run

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "measured": self.measured, "met": self.met}


def _get(doc: Mapping[str, Any], *path: str) -> Any:
    node: Any = doc
    for key in path:
        if not isinstance(node, Mapping) or key not in node or node[key] is None:
            return None
        node = node[key]
    return node


def _at_least(name: str, value: float | None, floor: float, unit: str) -> TargetCheck:
    return TargetCheck(name, f">= {floor:g} {unit}", value, None if value is None else value >= floor)


def _at_most(name: str, value: float | None, ceiling: float, unit: str) -> TargetCheck:
    return TargetCheck(name, f"<= {ceiling:g} {unit}", value, None if value is None else value <= ceiling)


def check_targets(report: Mapping[str, Any]) -> list[TargetCheck]:
    """The performance targets (README "Performance"); throughput is the full-speed phase, latency the rated and light ones."""
    s = report.get("streams", {})
    checks = [
        _at_least(
            "execution-result throughput",
            _get(s, "execution-result", "full", "throughput_eps"),
            3000,
            "events/s",
        ),
        _at_least(
            "task-created throughput", _get(s, "task-created", "full", "throughput_eps"), 500, "events/s"
        ),
        _at_least(
            "task-created throughput (stretch)",
            _get(s, "task-created", "full", "throughput_eps"),
            1000,
            "events/s",
        ),
        _at_most(
            "task-created p99 event-to-schedule at half the full-speed rate",
            _get(s, "task-created", "half", "schedule_latency_ms", "p99_ms"),
            250,
            "ms",
        ),
        _at_most(
            "task-created p50 event-to-schedule at light load",
            _get(s, "task-created", "light", "schedule_latency_ms", "p50_ms"),
            30,
            "ms",
        ),
        _at_least(
            "message-ingested throughput",
            _get(s, "message-ingested", "full", "throughput_eps"),
            500,
            "events/s",
        ),
        _at_most(
            "message searchable after arrival, max at 500/s",
            _get(s, "message-ingested", "rated", "commit_latency_ms", "max_ms"),
            2000,
            "ms",
        ),
        _at_least(
            "no-op pipeline vs raw aiokafka",
            _get(report, "references", "noop_vs_raw_kafka"),
            NOOP_TARGET,
            "x",
        ),
    ]
    checks += [
        _at_least(
            f"{stream} full speed vs raw aiokafka",
            _get(report, "references", "pipeline_vs_raw_kafka", stream),
            floor,
            "x",
        )
        for stream, floor in RAW_RATIO_TARGETS.items()
    ]
    rss = _get(report, "worker", "peak_rss_mb")
    checks.append(_at_most("worker peak RSS", rss, 1024, "MiB"))
    return checks


def missed_streams(checks: list[TargetCheck]) -> list[str]:
    """Streams with a missed target, stretch targets included: the ones worth a profile."""
    out = []
    for stream in STREAMS:
        if any(c.met is False and c.name.startswith(stream) for c in checks):
            out.append(stream)
    return out


def capacity_estimate(phase: Mapping[str, Any], cores: int) -> dict[str, Any]:
    """What one stream could sustain on `cores` dedicated cores, from the CPU its parts used.

    The measured throughput depends on what else the machine runs (the report shows it under
    "other processes"); CPU per event does much less. The worker is one Python thread, so it
    also caps the rate at one core's worth of its own time per event.
    """
    events = phase.get("events") or 0
    cpu = phase.get("cpu_s", {})
    if not events:
        return {}
    per_event_ms = {k: round(cpu.get(k, 0.0) / events * 1000, 3) for k in ("worker", "postgres", "broker")}
    total = sum(per_event_ms.values())
    worker = per_event_ms["worker"]
    limits = {
        "all parts on the cores": cores * 1000 / total if total > 0 else None,
        "worker (one thread)": 1000 / worker if worker > 0 else None,
    }
    known = {k: v for k, v in limits.items() if v is not None}
    bound = min(known, key=lambda k: known[k]) if known else None
    return {
        "cpu_ms_per_event": per_event_ms,
        "estimate_eps": round(known[bound], 1) if bound else None,
        "bound_by": bound,
    }
