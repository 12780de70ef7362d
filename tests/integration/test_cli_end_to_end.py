"""The `tasksage` command line, run as a user runs it: real subprocesses against the real broker
and database of the test session, configured only through environment variables."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from processors.contracts.codec import decode_task_created, validate_output
from streams.settings import Settings

TASKSAGE = str(Path(sys.executable).with_name("tasksage"))


@dataclass(frozen=True, slots=True)
class Run:
    code: int
    out: str
    err: str

    @property
    def err_text(self) -> str:
        """stderr with rich's line wrapping undone."""
        return " ".join(self.err.split())


def cli_env(settings: Settings) -> dict[str, str]:
    """Everything the commands need, the way a deployment passes it: environment variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_")}
    assert settings.kafka_bootstrap_servers and settings.database_url
    env["KAFKA_BOOTSTRAP_SERVERS"] = settings.kafka_bootstrap_servers
    env["DATABASE_URL"] = settings.database_url.get_secret_value()
    for name in (
        "data_dir",
        "topic_task_created",
        "topic_execution_result",
        "topic_message_ingested",
        "topic_task_schedules",
        "topic_schedule_snapshots",
        "topic_message_duplicates",
        "consumer_group",
        "topic_partitions",
        "session_timeout_ms",
        "heartbeat_interval_ms",
        "metrics_port",
        "snapshot_interval_s",
    ):
        env[f"TASKSAGE_{name.upper()}"] = str(getattr(settings, name))
    env["COLUMNS"] = "200"
    return env


async def tasksage(env: dict[str, str], *args: str, timeout_s: float = 60.0) -> Run:
    proc = await asyncio.create_subprocess_exec(
        TASKSAGE, *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout_s)
    assert proc.returncode is not None
    return Run(proc.returncode, out.decode(), err.decode())


def json_lines(text: str) -> list[dict]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


VALID = [
    {"task_id": "C1", "description": "fix typo in billing error message", "kind": "code"},
    {"task_id": "C2", "description": "summarize the Kafka release notes", "kind": "research", "priority": 3},
    {
        "event_id": "cli-3",
        "schema_version": 1,
        "occurred_at": "2026-03-02T09:00:00+00:00",
        "task_id": "C3",
        "description": "rotate credentials for payments-api",
    },
    {"task_id": "C4", "description": "answer customer question about retries", "kind": "qa"},
]


def publish_file(path: Path) -> tuple[Path, dict[int, str]]:
    """A JSON Lines file mixing valid and invalid lines; returns it and {line number: reason}."""
    lines = [
        orjson.dumps(VALID[0]).decode(),
        '{"task_id": "B1", "description": ',  # 2: cut off
        orjson.dumps(VALID[1]).decode(),
        orjson.dumps({"task_id": "B2", "kind": "code"}).decode(),  # 4: no description
        orjson.dumps({"task_id": "B3", "description": "x", "priority": "urgent"}).decode(),  # 5: wrong type
        "",  # 6: blank lines are skipped, not errors
        orjson.dumps(VALID[2]).decode(),
        '["C9", "not an object"]',  # 8
        orjson.dumps({"task_id": "B4", "description": "x", "schema_version": 7}).decode(),  # 9
        orjson.dumps(VALID[3]).decode(),
    ]
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path, {
        2: "not valid JSON",
        4: "description",
        5: "priority must be integer",
        8: "must be a JSON object",
        9: "schema_version 7 is not supported",
    }


async def test_migrate_publish_worker_consume_status_end_to_end(
    settings, tmp_path: Path, broker_kind: str
) -> None:
    env = cli_env(settings)

    first = await tasksage(env, "migrate")
    assert first.code == 0, first.err
    assert "applied 0001_extensions.sql" in first.out and "applied 0002_core.sql" in first.out
    again = await tasksage(env, "migrate")
    assert (again.code, again.out.strip()) == (0, "database is up to date"), again

    worker = await asyncio.create_subprocess_exec(
        TASKSAGE, "worker", env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    worker_log: list[str] = []
    collector = asyncio.create_task(_collect(worker, worker_log))
    try:
        await _wait_for(worker_log, "partitions assigned", timeout_s=60)

        source, reasons = publish_file(tmp_path / "tasks.jsonl")
        published = await tasksage(env, "publish", "task-created", str(source))
        assert published.code == 1, published
        assert published.out.strip() == f"{len(VALID)} sent, {len(reasons)} invalid"
        for number, reason in reasons.items():
            assert f"line {number}: not sent" in published.err_text, (number, published.err_text)
            start = published.err_text.index(f"line {number}: not sent")
            assert reason in published.err_text[start : start + 300], (number, published.err_text)
        assert published.err_text.count("not sent") == len(reasons)

        topic = settings.topic_task_created
        consumed = await tasksage(
            env, "consume", topic, "--from-beginning", "--limit", "4", "--timeout", "10"
        )
        assert consumed.code == 0, consumed.err
        docs = json_lines(consumed.out)
        assert sorted(d["task_id"] for d in docs) == ["C1", "C2", "C3", "C4"]
        for doc in docs:
            decode_task_created(orjson.dumps(doc))  # complete, valid events (envelope filled in)
        assert next(d for d in docs if d["task_id"] == "C3")["event_id"] == "cli-3", "given ids are kept"

        everything = await tasksage(
            env, "consume", topic, "--from-beginning", "--limit", "50", "--timeout", "2"
        )
        assert len(json_lines(everything.out)) == len(VALID), "only the valid lines were sent"
        fewer = await tasksage(env, "consume", topic, "--from-beginning", "--limit", "3", "--timeout", "10")
        assert len(json_lines(fewer.out)) == 3, "--limit is a limit across partitions"

        schedules = await tasksage(
            env,
            "consume",
            settings.topic_task_schedules,
            "--from-beginning",
            "--limit",
            "4",
            "--timeout",
            "30",
        )
        for doc in json_lines(schedules.out):
            validate_output("task-schedule", orjson.dumps(doc))
        assert sorted(d["task_id"] for d in json_lines(schedules.out)) == ["C1", "C2", "C3", "C4"]

        status = await tasksage(env, "status", "--json")
        assert status.code == 0, status.err
        report = orjson.loads(status.out)
        assert report["rows"]["tasks"] == 4 and report["rows"]["predictions"] == 4, report["rows"]
        assert report["rows"]["executions"] == 0
        assert report["rows"]["task_index_queue"] == 0  # no outcomes yet: nothing waits for the index
        by_topic = {t["topic"]: t for t in report["topics"]}
        # Apache Kafka's end offsets are exact. Tansu's can be a batch short, so there records
        # may read low, never high; either way the worker is never behind.
        if broker_kind == "kafka":
            assert (by_topic[topic]["records"], by_topic[topic]["lag"]) == (4, 0), by_topic[topic]
        else:
            assert 0 < by_topic[topic]["records"] <= 4 and by_topic[topic]["lag"] == 0, by_topic[topic]
        tasks_coverage = [c for c in report["coverage"] if c["table"] == "tasks"]
        assert [(c["embedded"], c["total"], c["coverage"]) for c in tasks_coverage] == [(4, 4, 1.0)]
        assert settings.database_url is not None
        password = settings.database_url.get_secret_value().split("@")[0].rpartition(":")[2]
        assert not password or password not in status.out, "no credentials in the status output"
    finally:
        if worker.returncode is None:
            worker.send_signal(signal.SIGINT)
        await asyncio.wait_for(worker.wait(), 60)
        await collector
    assert worker.returncode == 0, "".join(worker_log)[-3000:]
    assert any("worker stopped" in line for line in worker_log), "a graceful stop on SIGINT"


async def _collect(proc: asyncio.subprocess.Process, lines: list[str]) -> None:
    """Read stderr for the process's whole life, so it never blocks on a full pipe."""
    assert proc.stderr is not None
    while line := await proc.stderr.readline():
        lines.append(line.decode())


async def _wait_for(lines: list[str], text: str, timeout_s: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not any(text in line for line in lines):
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"no {text!r} within {timeout_s}s:\n" + "".join(lines))
        await asyncio.sleep(0.1)


async def test_every_command_has_help(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from streams.commands.cli import _register_optional_commands, cli

    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKSAGE_")}
    env["TASKSAGE_DATA_DIR"] = str(tmp_path)
    top = await tasksage(env, "--help")  # the installed console script, optional commands included
    assert top.code == 0 and "Usage: tasksage" in top.out, top
    _register_optional_commands()
    commands = sorted(cli.commands)
    assert {"up", "worker", "migrate", "publish", "consume", "replay", "status"} <= set(commands)
    runner = CliRunner()
    for name in commands:
        assert name in top.out, f"{name} is listed in tasksage --help"
        run = runner.invoke(
            cli, [name, "--help"], prog_name="tasksage", env={"TASKSAGE_DATA_DIR": str(tmp_path)}
        )
        assert run.exit_code == 0, (name, run.output)
        assert f"Usage: tasksage {name}" in run.output, (name, run.output)
        summary = run.output.split("\n\n")[1].strip() if "\n\n" in run.output else ""
        assert len(summary) > 10, f"`tasksage {name} --help` says what the command does"


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["publish", "no-such-event"], "'no-such-event' is not one of"),
        (["replay", "--topics", "not-an-input"], "not input topics"),
    ],
)
async def test_usage_errors_exit_2_with_a_reason(settings, args: list[str], needle: str) -> None:
    run = await tasksage(cli_env(settings), *args)
    assert run.code == 2, run
    assert needle in run.err_text
