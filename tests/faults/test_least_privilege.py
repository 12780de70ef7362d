"""deploy/worker-role.sql: the owner migrates, the worker runs with data rights only."""

from __future__ import annotations

import itertools
import os
import subprocess
from pathlib import Path

import asyncpg
import pytest

from streams.kafka import ensure_topics
from streams.settings import REPO_ROOT
from tests.faults.compare import compare, settle
from tests.faults.flow import publish_paced
from tests.faults.workload import WorkloadShape, generate, ground_truth
from tests.support.processes import WorkerProcess, run_cli, worker_processes

pytestmark = pytest.mark.slow
_ids = itertools.count(1)


def _with_user(dsn: str, user: str) -> str:
    scheme, rest = dsn.split("://", 1)
    return f"{scheme}://{user}:@{rest.split('@', 1)[1]}"


def _psql(dsn: str, script: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    from pgserver._commands import POSTGRES_BIN_PATH  # type: ignore[import-untyped]

    args = [str(POSTGRES_BIN_PATH / "psql"), dsn, "-X", "-q", "-f", str(script)]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)


async def test_worker_runs_without_ddl_rights_after_the_owner_migrates(
    fault_settings, endpoints, postgres, tmp_path
) -> None:
    database = endpoints.dsn.split("?")[0].rsplit("/", 1)[1]
    owner, worker_role = f"ts_owner_{os.getpid()}_{next(_ids)}", f"ts_worker_{os.getpid()}_{next(_ids)}"
    done = _psql(
        endpoints.dsn,
        REPO_ROOT / "deploy" / "worker-role.sql",
        db=database,
        owner=owner,
        worker=worker_role,
        owner_password="owner-secret",
        worker_password="worker-secret",
    )
    assert done.returncode == 0, done.stderr
    owner_dsn, worker_dsn = _with_user(endpoints.dsn, owner), _with_user(endpoints.dsn, worker_role)
    try:
        # The worker refuses to start on an unmigrated database, and says what to do.
        settings = fault_settings(database_url=worker_dsn)
        refused = run_cli(settings, "worker", timeout_s=60)
        assert refused.returncode != 0
        assert "tasksage migrate" in refused.stdout + refused.stderr

        migrated = run_cli(fault_settings(database_url=owner_dsn), "migrate")
        assert migrated.returncode == 0, migrated.stderr[-2000:]

        planned = generate(61, WorkloadShape(events=600))
        truth = ground_truth(planned)
        await ensure_topics(settings, endpoints.bootstrap)
        worker = WorkerProcess(settings, tmp_path / "logs")
        with worker_processes(worker):
            worker.start()
            await publish_paced(settings, planned, duration_s=1)
            observed, _ = await settle(endpoints.dsn, truth, timeout_s=120)
            assert worker.alive
        verdict = compare(truth, observed)
        assert verdict.problems == [], "\n".join(verdict.problems)
        assert "no right to create the vector indexes" in worker.log_text()

        conn = await asyncpg.connect(worker_dsn)
        try:
            for ddl in (
                "CREATE TABLE sneaky (x int)",
                "DROP TABLE inbox",
                "ALTER TABLE tasks ADD COLUMN y int",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute(ddl)
        finally:
            await conn.close()
    finally:
        admin = await asyncpg.connect(postgres.dsn)
        try:
            await admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            for role in (worker_role, owner):
                await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()
