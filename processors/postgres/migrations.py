"""Forward-only, checksummed SQL migrations applied under an advisory lock.

Files are `sql/NNNN_name.sql`, applied in order, each in its own transaction. An applied
file whose text changed is refused: fix forward with a new file instead.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from processors.errors import ConfigurationError, MigrationError
from processors.postgres.pool import Conn

log = logging.getLogger(__name__)

_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# Any constant works; it only has to be the same for every tasksage process.
_LOCK_KEY = 0x7A5C5A6E
# The start-up that follows the migrations (model indexes, the tier table) has a key of its own.
_STARTUP_LOCK_KEY = 0x7A5C57A7

DEFAULT_SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(sql_dir: Path = DEFAULT_SQL_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _FILE.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files must be named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path.read_text("utf-8")))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"duplicate migration numbers in {sql_dir}")
    return found


def _needs_owner(what: str, exc: Exception) -> MigrationError:
    return MigrationError(
        f"{what} and this database role may not change the schema ({exc})",
        hint="run `tasksage migrate` with the owner role's DATABASE_URL (deploy/worker-role.sql), then start the worker",
    )


async def applied(conn: Conn) -> dict[int, tuple[str, str]]:
    """version -> (name, checksum) of what the database has, empty on a fresh database."""
    exists = await conn.fetchval("SELECT to_regclass('public.schema_migrations') IS NOT NULL")
    if not exists:
        return {}
    rows = await conn.fetch("SELECT version, name, checksum FROM schema_migrations")
    return {r["version"]: (r["name"], r["checksum"]) for r in rows}


async def migrate(conn: Conn, sql_dir: Path = DEFAULT_SQL_DIR) -> list[Migration]:
    """Apply pending migrations; returns those applied now. Safe to run from many processes."""
    migrations = discover(sql_dir)
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        done = await applied(conn)
        if not done:  # DDL only when there is something to do: workers may run without DDL rights
            try:
                await conn.execute(
                    """CREATE TABLE IF NOT EXISTS schema_migrations (
                           version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                           applied_at timestamptz NOT NULL DEFAULT now())"""
                )
            except asyncpg.InsufficientPrivilegeError as exc:
                raise _needs_owner("the database is not migrated", exc) from None
        for migration in migrations:
            if migration.version in done:
                name, checksum = done[migration.version]
                if checksum != migration.checksum:
                    raise MigrationError(
                        f"migration {migration.version:04d}_{name}.sql was changed after it was applied",
                        hint="migrations are forward-only: restore the file and add a new one",
                    )
        unknown = sorted(set(done) - {m.version for m in migrations})
        if unknown:
            raise MigrationError(
                f"database has migrations this code does not know: {unknown}",
                hint="run a newer tasksage against this database",
            )
        pending = [m for m in migrations if m.version not in done]
        for migration in pending:
            async with conn.transaction():
                try:
                    await conn.execute(migration.sql)
                except asyncpg.InsufficientPrivilegeError as exc:
                    pending_name = f"migration {migration.version:04d}_{migration.name}.sql is pending"
                    raise _needs_owner(pending_name, exc) from None
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            log.info("applied migration %04d_%s", migration.version, migration.name)
        return pending
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)


async def migrate_database(dsn: str, sql_dir: Path = DEFAULT_SQL_DIR) -> list[Migration]:
    """Apply pending migrations in a connection of their own (a pool's vector codec needs the
    vector type that the first migration creates); returns the ones applied."""
    try:
        conn = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigurationError(f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL") from exc
    try:
        return await migrate(conn, sql_dir)
    finally:
        await conn.close()


@asynccontextmanager
async def startup_lock(conn: Conn) -> AsyncIterator[None]:
    """Held while a process prepares the database after migrating: processes starting together
    take turns, since creating indexes and replacing the tier table concurrently collide on
    unique keys. A session lock, released on exit (or with the connection)."""
    await conn.execute("SELECT pg_advisory_lock($1)", _STARTUP_LOCK_KEY)
    try:
        yield
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _STARTUP_LOCK_KEY)
