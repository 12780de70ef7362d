"""`tasksage embeddings list|switch|drop`: the embedding models a database holds.

See README "Search, backfill and model changes".
"""

from __future__ import annotations

import asyncio

import click
import orjson
from rich.table import Table

from processors.postgres import model_admin
from streams.commands.search import open_database_pool
from streams.commands.session import out, run_async, settings_from


@click.group()
def embeddings() -> None:
    """Embedding models: list them, switch reads to another, drop old vectors."""


@embeddings.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_models(ctx: click.Context, as_json: bool) -> None:
    """Registered models with their coverage per table and their indexes."""
    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> list[model_admin.ModelInfo]:
        pool = await open_database_pool(settings)
        try:
            async with pool.acquire() as conn:
                return await model_admin.list_models(conn)
        finally:
            await pool.close()

    models = run_async(main)
    if as_json:
        out.print_json(orjson.dumps(models).decode())
        return
    table = Table(
        "model", "provider", "dim", "reads", "vectors", "coverage", "indexes", title="embedding models"
    )
    for m in models:
        coverage = ", ".join(f"{c.table} {c.ratio:.1%} ({c.missing} missing)" for c in m.coverage)
        indexes = ", ".join(f"{i.name} ({i.size_bytes // 1024} KiB)" for i in m.indexes) or "none"
        table.add_row(
            m.name,
            m.provider,
            str(m.dimension),
            "active" if m.active else "",
            str(m.vectors),
            coverage,
            indexes,
        )
    out.print(table)


@embeddings.command("switch")
@click.argument("model")
@click.option("--force", is_flag=True, help="Switch even if the model does not cover every row yet.")
@click.pass_context
def switch(ctx: click.Context, model: str, force: bool) -> None:
    """Make MODEL the one searches and scheduling read, in one transaction.

    Refused while MODEL lacks a current vector for some row (run `tasksage backfill` for it
    first). Workers keep embedding new rows with their configured model: restart them with
    MODEL configured, and keep `tasksage backfill --follow` running for MODEL until then.
    """
    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> model_admin.SwitchOutcome:
        pool = await open_database_pool(settings)
        try:
            async with pool.acquire() as conn:
                return await model_admin.switch_active(conn, model, force=force)
        finally:
            await pool.close()

    outcome = run_async(main)
    if outcome.previous == outcome.active:
        out.print(f"{outcome.active} is already the active model")
        return
    forced = (
        " (forced: " + ", ".join(f"{c.table} {c.ratio:.1%}" for c in outcome.coverage) + ")"
        if outcome.forced
        else ""
    )
    out.print(f"reads switched from {outcome.previous or 'none'} to {outcome.active}{forced}")


@embeddings.command("drop")
@click.argument("model")
@click.option("--force", is_flag=True, help="Drop even if something wrote the model's vectors recently.")
@click.confirmation_option(prompt="Delete this model's vectors and indexes?")
@click.pass_context
def drop(ctx: click.Context, model: str, force: bool) -> None:
    """Delete MODEL's vectors, profiles and indexes (never the active model's)."""
    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> model_admin.DropOutcome:
        pool = await open_database_pool(settings)
        try:
            async with pool.acquire() as conn:
                return await model_admin.drop_model_vectors(conn, model, force=force)
        finally:
            await pool.close()

    outcome = run_async(main)
    out.print(
        f"dropped {outcome.vectors_deleted} vectors, {outcome.profiles_deleted} profiles and "
        f"{len(outcome.indexes_dropped)} indexes of {outcome.model}"
    )


COMMANDS = [embeddings]
