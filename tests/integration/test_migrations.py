"""Migrations on a real PostgreSQL: idempotent, checksummed, safe to run from several processes."""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import asyncpg
import pytest

from processors.errors import MigrationError
from processors.postgres.migrations import DEFAULT_SQL_DIR, applied, discover, migrate


@pytest.fixture
def sql_dir(tmp_path: Path) -> Path:
    """A copy of sql/ the test may change."""
    target = tmp_path / "sql"
    shutil.copytree(DEFAULT_SQL_DIR, target)
    return target


async def test_applying_twice_is_a_no_op(endpoints) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        first = await migrate(conn)
        tables = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        second = await migrate(conn)
        history = await applied(conn)
        tables_after = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    finally:
        await conn.close()
    files = discover()
    assert [m.version for m in first] == [m.version for m in files]
    assert second == []
    assert history == {m.version: (m.name, m.checksum) for m in files}
    assert tables_after == tables
    assert {"tasks", "inbox", "schema_migrations"} <= {r["tablename"] for r in tables}


async def test_a_changed_applied_file_is_refused_and_nothing_runs(endpoints, sql_dir: Path) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        await migrate(conn, sql_dir)
        _change_applied_file_and_add_a_later_one(sql_dir)
        with pytest.raises(MigrationError, match=r"0002_.*changed after it was applied") as caught:
            await migrate(conn, sql_dir)
        assert "forward-only" in str(caught.value)
        exists = await conn.fetchval("SELECT to_regclass('public.later') IS NOT NULL")
        versions = sorted(await applied(conn))
        # The lock was released despite the error: another migrate can take it at once.
        taken = await conn.fetchval("SELECT pg_try_advisory_lock(0x7A5C5A6E)")
    finally:
        await conn.close()
    assert exists is False, "a refused run applies nothing, not even later files"
    assert 9999 not in versions
    assert taken is True


def _change_applied_file_and_add_a_later_one(sql_dir: Path) -> None:
    core = next(sql_dir.glob("0002_*.sql"))
    core.write_text(core.read_text("utf-8") + "\nCREATE TABLE sneaky (id int);\n", "utf-8")
    (sql_dir / "9999_later.sql").write_text("CREATE TABLE later (id int);\n", "utf-8")


async def test_files_the_code_does_not_know_or_misnamed_files_are_refused(endpoints, sql_dir: Path) -> None:
    conn = await asyncpg.connect(endpoints.dsn)
    try:
        (sql_dir / "0500_extra.sql").write_text("CREATE TABLE extra (id int);\n", "utf-8")
        await migrate(conn, sql_dir)
        (sql_dir / "0500_extra.sql").unlink()
        with pytest.raises(MigrationError, match=r"does not know: \[500\]"):
            await migrate(conn, sql_dir)
        (sql_dir / "0600-bad name.sql").write_text("SELECT 1;\n", "utf-8")
        with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
            await migrate(conn, sql_dir)
    finally:
        await conn.close()


async def test_concurrent_migrations_wait_for_each_other(endpoints, sql_dir: Path) -> None:
    # A slow last migration widens the window in which a second process could interfere.
    (sql_dir / "9000_slow.sql").write_text(
        "SELECT pg_sleep(0.5);\nCREATE TABLE slow_marker (id int);\n", "utf-8"
    )
    conns = [await asyncpg.connect(endpoints.dsn) for _ in range(3)]
    try:
        started = time.monotonic()
        runs = await asyncio.gather(*(migrate(c, sql_dir) for c in conns))
        elapsed = time.monotonic() - started
        rows = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
    finally:
        for c in conns:
            await c.close()
    applied_counts = sorted(len(r) for r in runs)
    total = len(discover(sql_dir))
    assert applied_counts == [0, 0, total], "one process applied everything, the others found it done"
    assert [r["version"] for r in rows] == [m.version for m in discover(sql_dir)]
    assert elapsed >= 0.5
