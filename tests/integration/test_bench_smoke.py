"""`tasksage bench` end to end on a tiny load: it completes and writes a valid JSON report.

The targets themselves are checked by running the benchmark (README "Performance"), not here.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from streams.bench.report import HALF_RATE_STREAMS, STREAMS
from streams.embedded import EmbeddedBroker, EmbeddedPostgres


def _bench(
    broker: EmbeddedBroker, postgres: EmbeddedPostgres, tmp_path: Path, *options: str
) -> tuple[dict[str, Any], str]:
    """Runs `tasksage bench` on a tiny load; (the JSON report, the summary printed)."""
    report_path = tmp_path / "bench.json"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap,
        "DATABASE_URL": postgres.dsn,
        "TASKSAGE_TOPIC_PARTITIONS": "2",
        "TMPDIR": str(tmp_path),  # the bench's work directory (worker log, profiles) stays in here
    }
    bench = subprocess.Popen(
        [
            sys.executable, "-c", "from streams.commands.cli import main; main()",
            "--data-dir", str(tmp_path / "data"),
            "bench", "--events", "60", "--history", "300", "--light-events", "10", "--no-profile",
            "--json", str(report_path), *options,
        ],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:
        stdout, stderr = bench.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        os.killpg(bench.pid, signal.SIGKILL)  # the bench and the worker it started
        stdout, stderr = bench.communicate()
        raise AssertionError(f"bench did not finish in 150 s:\n{stderr[-3000:]}") from None
    assert bench.returncode == 0, stderr[-3000:]
    return json.loads(report_path.read_text()), stdout


def test_bench_runs_and_writes_a_report(
    broker: EmbeddedBroker, postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    report, stdout = _bench(broker, postgres, tmp_path)
    assert report["preload"]["tasks"] == 300
    assert Path(report["work_dir"]).parent == tmp_path  # under TMPDIR, kept for the worker log
    for stream in STREAMS:
        phases = report["streams"][stream]
        half = {"half"} if stream in HALF_RATE_STREAMS else set()
        assert set(phases) == {"light", "rated", "full"} | half
        for phase in phases.values():
            assert phase["committed"] == phase["events"] > 0
            assert phase["throughput_eps"] > 0
            assert phase["commit_latency_ms"]["p50_ms"] <= phase["commit_latency_ms"]["p99_ms"]
    assert report["streams"]["task-created"]["full"]["schedules_seen"] == 60
    half = report["streams"]["task-created"]["half"]
    assert half["offered_rate_eps"] == report["streams"]["task-created"]["full"]["throughput_eps"] / 2
    assert half["schedules_seen"] == 60
    # First outcomes and new messages were queued for their indexes, and the merger indexed them.
    for stream in ("execution-result", "message-ingested"):
        for phase in report["streams"][stream].values():
            assert phase["index_queue_drained_s"] is not None
            assert 0 < phase["throughput_incl_index_eps"] <= phase["throughput_eps"] * 1.01
    refs = report["references"]
    assert refs["raw_kafka_eps"] > 0
    assert refs["noop_pipeline_eps"] > 0
    # Alternated pairs, each no-op run under its own group: every run drained every record.
    assert len(refs["raw_kafka_runs_eps"]) == len(refs["noop_pipeline_runs_eps"]) == 3
    assert all(r > 0 for r in refs["raw_kafka_runs_eps"] + refs["noop_pipeline_runs_eps"])
    assert sorted(refs["noop_vs_raw_kafka_runs"])[1] == refs["noop_vs_raw_kafka"]
    database = report["references"]["database_loop"]
    for stream in STREAMS:
        loop = database[stream]
        assert loop["events"] == 60
        assert loop["eps"] > 0
        assert 0 < loop["db_share_of_wall"] <= 1
        assert loop["top_statements"], stream
        assert all(s["calls"] > 0 and s["us_per_event"] > 0 and s["sql"] for s in loop["top_statements"])
        assert report["references"]["pipeline_vs_database_loop"][stream] > 0
    assert "database loop task-created" in stdout
    assert report["worker"]["peak_rss_mb"] > 0
    # The layer learned from every outcome whose task's schedule stored its inputs for the arm
    # that ran, once: all outcomes of preloaded tasks (the preload stores inputs for every arm) and
    # the first outcomes of new tasks on an arm their decision weighed. Of the 150 outcomes (20 of
    # the warm-up, then the light, rated and full phases) every sixth is a new task's first.
    layer = report["learned_layer"]
    assert layer["enabled"] is True
    assert layer["outcomes_learned"] == layer["outcomes_with_inputs"]
    assert 150 - 150 // 6 <= layer["outcomes_learned"] <= 150
    work_dir = Path(report["work_dir"])
    assert (work_dir / "worker.log").exists(), "the logs the report points to stay"
    assert not (work_dir / "services" / "pg").exists(), "the embedded database's files are removed"
    assert {t["name"] for t in report["targets"]} >= {"worker peak RSS", "task-created throughput"}
    assert "stream" in stdout and "targets" in stdout  # the summary tables


def test_bench_measures_only_the_streams_asked_for(
    broker: EmbeddedBroker, postgres: EmbeddedPostgres, tmp_path: Path
) -> None:
    report, stdout = _bench(broker, postgres, tmp_path, "--stream", "task-created", "--no-references")
    assert list(report["streams"]) == ["task-created"] == report["run"]["streams"]
    full = report["streams"]["task-created"]["full"]
    assert full["committed"] == full["schedules_seen"] == 60
    assert "references" not in report
    assert list(report["capacity_on_dedicated_cores"]) == ["task-created"]
    met = {t["name"]: t["met"] for t in report["targets"]}
    assert met["task-created throughput"] is not None
    assert met["execution-result throughput"] is None  # not run: "-", not a miss
    assert met["no-op pipeline vs raw aiokafka"] is None
    assert "execution-result" not in stdout.split("targets")[0]  # no rows for streams not run
