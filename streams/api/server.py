"""Run the API: check the exposure rules, then serve the app on uvicorn until stopped."""

from __future__ import annotations

import asyncio
import logging

from streams.api.app import create_app
from streams.api.auth import check_exposure, load_tokens
from streams.api.state import ApiRuntime
from streams.gc_tuning import settle_after_start
from streams.runtime import Endpoints, resolve_endpoints
from streams.serving import AsgiServer
from streams.settings import Settings

log = logging.getLogger(__name__)


async def serve(settings: Settings, stop: asyncio.Event, endpoints: Endpoints | None = None) -> None:
    tokens = load_tokens(settings)
    check_exposure(settings, tokens)
    if not tokens:
        log.warning("no API tokens configured: every caller has every scope")
    # Opened here rather than in the app's start-up, so a configuration error reaches the
    # command line as itself instead of as uvicorn's "startup failed".
    runtime = await ApiRuntime.open(settings, endpoints or resolve_endpoints(settings))
    try:
        app = create_app(settings, runtime=runtime)
        server = AsgiServer(
            app, settings.api_host, settings.api_port, lifespan=True, timeout_graceful_shutdown=10
        )
        await server.start()
        settle_after_start(settings.gc_young_threshold)
        log.info("tasksage api on http://%s:%d (OpenAPI at /openapi.json)", settings.api_host, server.port)
        stopper = asyncio.create_task(stop.wait())
        runner = asyncio.create_task(server.wait())
        await asyncio.wait({stopper, runner}, return_when=asyncio.FIRST_COMPLETED)
        stopper.cancel()
        await server.stop()
    finally:
        await runtime.close()
