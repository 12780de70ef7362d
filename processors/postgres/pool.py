"""asyncpg pool with the binary pgvector codec on every connection."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import asyncpg.pool
from pgvector.asyncpg import register_vector

from processors.errors import DatabaseUnavailable

Pool = asyncpg.Pool
# A plain connection or one borrowed from the pool; repositories accept either.
Conn = asyncpg.Connection | asyncpg.pool.PoolConnectionProxy
# What a query logger (Connection.add_query_logger) receives: the benchmark times statements with it.
LoggedQuery = asyncpg.connection.LoggedQuery


async def _init_connection(conn: asyncpg.Connection) -> None:
    # Vectors travel in pgvector's binary format: text literals cost far more to encode and parse.
    await register_vector(conn)


async def _keep_session(conn: asyncpg.Connection) -> None:
    """A release that only rolls back an open transaction (asyncpg does that before this runs)."""


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 4, reset_sessions: bool = True, **kwargs: Any
) -> Pool:
    """Open a pool; the vector extension must already exist (run migrations first).

    By default a released connection's session is reset (settings, advisory locks, LISTEN), one
    more round trip per release. `reset_sessions=False` skips it, for users that keep no session
    state (SET LOCAL and transaction-level locks end with their transaction): the API, which
    releases several connections per request."""
    if not reset_sessions:
        kwargs["reset"] = _keep_session
    try:
        pool: Pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL and that the server is up"
        ) from exc
    return pool


async def ping(conn: Conn) -> None:
    """One round trip: raises when the server does not answer (the health probe)."""
    await conn.fetchval("SELECT 1")


Connection = asyncpg.Connection


@contextlib.asynccontextmanager
async def tuned_transaction(conn: Conn, settings: str, *, snapshot: bool = False) -> AsyncIterator[None]:
    """A transaction whose `SET LOCAL` statements (`settings`, `;`-separated) travel with its
    BEGIN: one round trip where `conn.transaction()` and an execute cost two. Inside a
    transaction already: a savepoint, as `conn.transaction()` would nest.

    `snapshot`: a read-only transaction whose statements all see one snapshot (REPEATABLE
    READ). Under READ COMMITTED each statement sees the commits made before it started, so
    two reads that split a table by a flag another transaction flips can both miss a row."""
    if conn.is_in_transaction():
        async with conn.transaction():
            await conn.execute(settings)
            yield
        return
    begin = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if snapshot else "BEGIN"
    await conn.execute(f"{begin}; {settings}")
    try:
        yield
    except BaseException:
        if conn.is_in_transaction() and not conn.is_closed():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")


async def connect(dsn: str) -> Connection:
    """One connection of its own, outside the pool (a session lock lives as long as it does)."""
    try:
        conn: Connection = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL and that the server is up"
        ) from exc
    return conn


def rows_affected(status: str) -> int:
    """Rows a command touched, from its status tag ("INSERT 0 12", "UPDATE 3", "DELETE 5")."""
    return int(status.rsplit(" ", 1)[-1])
