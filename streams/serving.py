"""Serve an ASGI app with uvicorn inside a running asyncio program (the worker's metrics and
health, `tasksage api`), leaving signal handling to the program: uvicorn's own handlers would
replace the ones that shut the worker down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the program's stop event decides when to stop, not uvicorn


class AsgiServer:
    """start() returns once the socket listens (or raises OSError when it cannot); stop()
    finishes the requests in flight and closes it."""

    def __init__(
        self,
        app: ASGIApp,
        host: str,
        port: int,
        *,
        lifespan: bool = False,
        access_log: bool = False,
        timeout_graceful_shutdown: int = 5,
    ) -> None:
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            lifespan="on" if lifespan else "off",
            access_log=access_log,
            log_config=None,  # the program's logging setup applies
            loop="none",
            http="httptools",
            timeout_graceful_shutdown=timeout_graceful_shutdown,
        )
        self.server = _Server(config)
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the one asked for, or the one chosen for port 0)."""
        for server in self.server.servers:
            for sock in server.sockets:
                return int(sock.getsockname()[1])
        return int(self.server.config.port)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._serve(), name="http-server")
        while not self.server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
                raise OSError(f"cannot listen on {self.server.config.host}:{self.server.config.port}")
            await asyncio.sleep(0.01)

    async def _serve(self) -> None:
        try:
            await self.server.serve()
        except SystemExit as exc:  # uvicorn exits when binding or the app's startup fails
            raise OSError(
                f"HTTP server on {self.server.config.host}:{self.server.config.port} did not start"
            ) from exc

    async def wait(self) -> None:
        """Until the server stops by itself (it does not unless it fails)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(Exception):
            await self._task
        self._task = None
