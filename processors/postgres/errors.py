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
