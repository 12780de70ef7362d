"""The asyncpg errors that say the database went away, not that the data is bad: the failure
policy (processors/failures.py) retries them."""

from __future__ import annotations

import asyncpg

TRANSIENT_ERRORS = (
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.DeadlockDetectedError,
    asyncpg.SerializationError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)

# The role may not run DDL (a least-privilege worker role, deploy/worker-role.sql).
InsufficientPrivilege = asyncpg.InsufficientPrivilegeError

# Any error the server answered with: to callers outside processors/postgres (the API's start-up
# turns a refused connection into a configuration error) without importing asyncpg themselves.
PostgresError = asyncpg.PostgresError
