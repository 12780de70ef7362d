"""`tasksage api`: the HTTP API, and `tasksage openapi`: its OpenAPI document."""

from __future__ import annotations

import asyncio
from pathlib import Path

import click
import orjson

COMMANDS: list[click.Command] = []


@click.command("api")
@click.option(
    "--host", default=None, help="Address to listen on [default: TASKSAGE_API_HOST, else 127.0.0.1]."
)
@click.option(
    "--port", type=int, default=None, help="Port [default: TASKSAGE_API_PORT, else 8080; 0: any free]."
)
@click.option(
    "--tokens-file",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Bearer tokens, one `SCOPES:TOKEN` a line (SCOPES: read, write or read,write).",
)
@click.option(
    "--insecure", is_flag=True, default=None, help="Serve without tokens on a non-loopback address."
)
@click.pass_context
def api(
    ctx: click.Context, host: str | None, port: int | None, tokens_file: Path | None, insecure: bool | None
) -> None:
    """Serve the HTTP API: recommendations, publishing, tasks, search, arms, health, metrics.

    Needs the worker's database and broker (configured, or those of `tasksage up`) and a
    worker that has started once (it registers the embedding model and the tier table).
    Tokens come from TASKSAGE_API_TOKENS and/or the tokens file; without any, the API
    refuses to listen beyond loopback unless --insecure. README "HTTP API" has examples.
    """
    from streams.api.server import serve
    from streams.commands.session import run_async, settings_from

    settings = settings_from(
        ctx, api_host=host, api_port=port, api_tokens_file=tokens_file, api_insecure=insecure or None
    )

    async def main(stop: asyncio.Event) -> None:
        await serve(settings, stop)

    run_async(main, fast_loop=True)


@click.command("openapi")
@click.option(
    "--output", type=click.Path(path_type=Path, dir_okay=False), default=None, help="File [default: stdout]."
)
def openapi(output: Path | None) -> None:
    """Print (or write) the API's OpenAPI document; deploy/openapi.json is this, committed."""
    from streams.api.app import create_app
    from streams.settings import Settings

    text = openapi_text(create_app(Settings.model_validate({}), connect=False).openapi())
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text, encoding="utf-8")


def openapi_text(document: dict[str, object]) -> str:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode() + "\n"


COMMANDS += [api, openapi]
