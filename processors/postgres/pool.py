"""asyncpg pool with the binary pgvector codec on every connection."""

from __future__ import annotations

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


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 4, **kwargs: Any) -> Pool:
    """Open a pool; the vector extension must already exist (run migrations first)."""
    try:
        pool: Pool = await asyncpg.create_pool(
            dsn, min_size=min_size, max_size=max_size, init=_init_connection, **kwargs
        )
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL and that the server is up"
        ) from exc
    return pool


Connection = asyncpg.Connection


async def connect(dsn: str) -> Connection:
    """One connection of its own, outside the pool (a session lock lives as long as it does)."""
    try:
        conn: Connection = await asyncpg.connect(dsn)
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL: {exc}", hint="check DATABASE_URL and that the server is up"
        ) from exc
    return conn
