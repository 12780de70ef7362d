"""The benchmark's arithmetic: percentiles, progress rates, profile parts, target checks."""

from __future__ import annotations

from streams.bench.profile import summarize_collapsed
from streams.bench.report import capacity_estimate, check_targets, missed_streams
from streams.bench.stats import percentile, progress_rate, summarize


def test_percentiles_interpolate_between_ranks() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.5
    assert percentile(values, 99) == 99.01
    assert percentile([7.0], 95) == 7.0
    summary = summarize([5.0, 1.0, 3.0])
    assert summary is not None
    assert (summary.p50_ms, summary.max_ms, summary.count) == (3.0, 5.0, 3)
    assert summarize([]) is None


def test_progress_rate_starts_at_first_visible_progress() -> None:
    # 4 s of start-up with nothing done, then 1,000 events in 2 s.
    samples = [(0.0, 0), (4.0, 0), (5.0, 500), (6.0, 1000), (7.0, 1000)]
    assert progress_rate(samples) == (500, 1.0)
    assert progress_rate([(0.0, 0), (0.5, 300)]) == (300, 0.5)
    assert progress_rate([(0.0, 0), (1.0, 0)]) == (0, 0.0)


def test_profile_parts_go_to_the_innermost_known_frame() -> None:
    collapsed = "\n".join(
        [
            "main (streams/worker/loop.py:1);plan (processors/pipeline/tasks.py:2);embed (processors/embedders/hashing.py:3) 6",
            "main (streams/worker/loop.py:1);fetch (asyncpg/connection.py:9) 3",
            "main (streams/worker/loop.py:1) 1",
        ]
    )
    summary = summarize_collapsed(collapsed)
    assert summary.samples == 10
    assert summary.by_part == {"embedding": 0.6, "database driver (asyncpg)": 0.3, "worker loop": 0.1}
    assert summary.top_self[0] == ("embed (embedders/hashing.py)", 0.6)


def test_targets_name_the_streams_that_missed() -> None:
    report = {
        "streams": {
            "task-created": {
                "full": {"throughput_eps": 400.0},
                "half": {"schedule_latency_ms": {"p99_ms": 120.0}},
                "light": {"schedule_latency_ms": {"p50_ms": 12.0}},
            },
            "execution-result": {"full": {"throughput_eps": 4000.0}},
        },
        "worker": {"peak_rss_mb": 120.0},
    }
    checks = {c.name: c.met for c in check_targets(report)}
    assert checks["task-created throughput"] is False
    assert checks["task-created p99 event-to-schedule at half the full-speed rate"] is True
    assert checks["execution-result throughput"] is True
    assert checks["message-ingested throughput"] is None  # not measured
    assert missed_streams(check_targets(report)) == ["task-created"]


def test_a_missed_stretch_target_alone_earns_a_profile() -> None:
    report = {
        "streams": {
            "task-created": {
                "full": {"throughput_eps": 832.0},
                "half": {"schedule_latency_ms": {"p99_ms": 200.0}},
                "light": {"schedule_latency_ms": {"p50_ms": 12.0}},
            },
        },
    }
    checks = {c.name: c.met for c in check_targets(report)}
    assert checks["task-created throughput"] is True
    assert checks["task-created throughput (stretch)"] is False
    assert missed_streams(check_targets(report)) == ["task-created"]


def test_capacity_is_bound_by_the_cores_or_the_single_worker_thread() -> None:
    # 1,000 events: 0.5 ms worker, 1 ms database, 0.5 ms broker per event -> 2 ms on 2 cores.
    phase = {"events": 1000, "cpu_s": {"worker": 0.5, "postgres": 1.0, "broker": 0.5, "other processes": 9.0}}
    cap = capacity_estimate(phase, cores=2)
    assert cap["cpu_ms_per_event"] == {"worker": 0.5, "postgres": 1.0, "broker": 0.5}
    assert (cap["estimate_eps"], cap["bound_by"]) == (1000.0, "all parts on the cores")
    busy_worker = {"events": 1000, "cpu_s": {"worker": 2.0, "postgres": 0.1, "broker": 0.1}}
    assert capacity_estimate(busy_worker, cores=8)["bound_by"] == "worker (one thread)"
    assert capacity_estimate({"events": 0}, cores=2) == {}


def test_each_stream_is_judged_as_a_share_of_the_raw_aiokafka_loop_in_the_same_run() -> None:
    report = {
        "references": {
            "pipeline_vs_raw_kafka": {
                "task-created": 0.05,
                "execution-result": 0.076,
                "message-ingested": None,
            }
        }
    }
    checks = {c.name: (c.target, c.met) for c in check_targets(report)}
    assert checks["task-created full speed vs raw aiokafka"] == (">= 0.04 x", True)
    assert checks["execution-result full speed vs raw aiokafka"] == (">= 0.15 x", False)
    assert checks["message-ingested full speed vs raw aiokafka"] == (">= 0.04 x", None)
    assert missed_streams(check_targets(report)) == ["execution-result"]
