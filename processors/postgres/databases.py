"""Whole databases on a server: a throwaway one per evaluation run, created and dropped with the
credentials of the configured one."""

from __future__ import annotations

import contextlib

import asyncpg

from processors.errors import ConfigurationError


def database_dsn(dsn: str, database: str) -> str:
    """The same server and credentials, another database (URL form, as pgserver and libpq use)."""
    head, sep, query = dsn.partition("?")
    root = head.rsplit("/", 1)[0]
    return f"{root}/{database}" + (f"?{query}" if sep else "")


async def create_database(dsn: str, name: str, *, purpose: str = "evaluation") -> str:
    """Create database `name` beside the one of `dsn`; returns its DSN."""
    try:
        admin = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise ConfigurationError(f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL") from exc
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    except asyncpg.PostgresError as exc:
        raise ConfigurationError(
            f"{purpose} needs a fresh database and could not create {name}: {exc}",
            hint="grant CREATEDB to the user, or run without DATABASE_URL to use the embedded PostgreSQL",
        ) from exc
    finally:
        await admin.close()
    return database_dsn(dsn, name)


async def drop_database(dsn: str, name: str) -> None:
    with contextlib.suppress(OSError, asyncpg.PostgresError):
        admin = await asyncpg.connect(dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
