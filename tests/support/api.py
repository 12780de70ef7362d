"""A running `tasksage api` for tests: the real app on uvicorn on a free port in this process,
reached through HTTP with httpx like any client."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from streams.api.app import create_app
from streams.runtime import Endpoints, prepare_database
from streams.serving import AsgiServer
from streams.settings import Settings

READ = "read:" + "r" * 24
WRITE = "write:" + "w" * 24
BOTH = "read,write:" + "b" * 24
TOKENS = f"{READ} {WRITE} {BOTH}"


def bearer(entry: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {entry.split(':', 1)[1]}"}


@contextlib.asynccontextmanager
async def running_api(settings: Settings, endpoints: Endpoints) -> AsyncIterator[str]:
    """The API's base URL while it serves. The schema is migrated first (`tasksage migrate`),
    as the worker or an operator would have done."""
    await prepare_database(settings, endpoints.dsn)
    server = AsgiServer(create_app(settings, endpoints), "127.0.0.1", 0, lifespan=True)
    await server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        await server.stop()
