"""`tasksage search`, `similar` and `backfill` (`embeddings list|switch|drop` in embeddings.py).

See README "Search, backfill and model changes".
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import click
import orjson
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from processors.backfill import Backfill, BackfillReport
from processors.backfill import Progress as BackfillProgress
from processors.embedders.providers import PROVIDER_NAMES
from processors.postgres.pool import Pool
from processors.postgres.search_queries import KINDS, filter_clauses
from processors.search.types import SEARCH_KINDS, Filters, SearchKind, SearchResult
from streams.commands.session import console, out, run_async, settings_from
from streams.embedded import read_service_info
from streams.settings import Settings

KIND = click.Choice(list(SEARCH_KINDS))


def database_url(settings: Settings) -> str:
    """Only PostgreSQL is needed here: DATABASE_URL, else the database of a running `tasksage up`."""
    from processors.errors import ConfigurationError

    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    running = read_service_info(settings.data_dir)
    if running is None:
        raise ConfigurationError(
            f"no DATABASE_URL configured and no `tasksage up` running in {settings.data_dir}",
            hint="set DATABASE_URL, or start the embedded services with `tasksage up`",
        )
    return running.database_url


async def open_database_pool(settings: Settings, *, migrate: bool = False) -> Pool:
    from streams.runtime import open_pool, prepare_database

    dsn = database_url(settings)
    if migrate:
        await prepare_database(settings, dsn)
    return await open_pool(settings, dsn)


def _print_result(result: SearchResult, as_json: bool) -> None:
    if as_json:
        out.print_json(orjson.dumps(result, default=str).decode())
        return
    hybrid = result.mode == "hybrid"
    title = f"{result.mode} search over {result.kind} ({result.model}): {len(result.hits)} results"
    if result.exact_fallback:
        title += " (filter too selective for the index: ranked exactly)"
    columns = [
        "#",
        "rrf" if hybrid else "similarity",
        *(["cosine", "vec#", "text#"] if hybrid else []),
        "id",
        "text",
    ]
    table = Table(*columns, title=title)
    for rank, hit in enumerate(result.hits, start=1):
        text = hit.text if len(hit.text) <= 90 else hit.text[:87] + "..."
        extra = (
            [
                "" if hit.similarity is None else f"{hit.similarity:.3f}",
                str(hit.vector_rank or ""),
                str(hit.text_rank or ""),
            ]
            if hybrid
            else []
        )
        score = f"{hit.score:.4f}" if hybrid else f"{hit.score:.3f}"
        table.add_row(str(rank), score, *extra, hit.id, text)
    out.print(table)


def _filters(**values: Any) -> Filters:
    return Filters(**{k: v for k, v in values.items() if v is not None})


@click.command()
@click.argument("query")
@click.option("--kind", type=KIND, default="messages", show_default=True, help="What to search.")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--threshold", type=click.FloatRange(-1, 1), default=None, help="Minimum cosine similarity.")
@click.option("--hybrid", is_flag=True, help="Fuse full-text and vector rankings (reciprocal rank fusion).")
@click.option("--source", default=None, help="Messages from this source only.")
@click.option("--author", default=None, help="Messages by this author only.")
@click.option("--thread", "thread_id", default=None, help="Messages of this thread only.")
@click.option("--task", "task_id", default=None, help="Messages linked to this task only.")
@click.option("--task-kind", "task_kind", default=None, help="Tasks of this kind only.")
@click.option(
    "--status", type=click.Choice(["pending", "succeeded", "failed"]), default=None, help="Tasks only."
)
@click.option(
    "--since", type=click.DateTime(), default=None, help="Rows that occurred at or after this time."
)
@click.option("--explain", is_flag=True, help="Print the query plan of the vector step instead.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    kind: SearchKind,
    limit: int,
    threshold: float | None,
    hybrid: bool,
    source: str | None,
    author: str | None,
    thread_id: str | None,
    task_id: str | None,
    task_kind: str | None,
    status: str | None,
    since: datetime | None,
    explain: bool,
    as_json: bool,
) -> None:
    """Find messages (or tasks) by meaning, ranked with their similarity to QUERY.

    Reads use the active embedding model (`tasksage embeddings list`). Filters apply inside
    the search, so `--limit` rows come back whenever that many match.
    """
    from streams.search_runtime import open_search

    settings = settings_from(ctx)
    filters = _filters(
        source=source,
        author=author,
        thread_id=thread_id,
        task_id=task_id,
        since=since,
        kind=task_kind,
        status=status,
    )
    try:
        filter_clauses(KINDS[kind], filters, 2)
    except ValueError as exc:  # e.g. --source with --kind tasks
        raise click.UsageError(str(exc)) from None

    async def main(stop: asyncio.Event) -> SearchResult | list[str]:
        pool = await open_database_pool(settings)
        try:
            session = await open_search(settings, pool)
            try:
                vector = (await session.embedder.embed([query]))[0]
                repo = session.repository
                if explain:
                    return await repo.explain(kind, vector, limit=limit, filters=filters)
                if hybrid:
                    return await repo.hybrid(
                        kind, query, vector, limit=limit, threshold=threshold, filters=filters
                    )
                return await repo.search(kind, vector, limit=limit, threshold=threshold, filters=filters)
            finally:
                await session.aclose()
        finally:
            await pool.close()

    result = run_async(main)
    if isinstance(result, list):
        out.print("\n".join(result))
    else:
        _print_result(result, as_json)


@click.command()
@click.argument("row_id", metavar="ID")
@click.option("--kind", type=KIND, default=None, help="Whether ID is a message or a task [default: either].")
@click.option("--limit", type=click.IntRange(1, 1000), default=10, show_default=True)
@click.option("--threshold", type=click.FloatRange(-1, 1), default=None, help="Minimum cosine similarity.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.pass_context
def similar(
    ctx: click.Context,
    row_id: str,
    kind: SearchKind | None,
    limit: int,
    threshold: float | None,
    as_json: bool,
) -> None:
    """The messages (or tasks) nearest to an existing one, by its stored vector."""
    from processors.postgres.search import RowNotFound
    from streams.search_runtime import open_search

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> SearchResult:
        pool = await open_database_pool(settings)
        try:
            session = await open_search(settings, pool)
            try:
                repo = session.repository
                kinds: list[SearchKind] = [kind] if kind else list(SEARCH_KINDS)
                for i, candidate in enumerate(kinds):
                    try:
                        vector = await repo.stored_vector(candidate, row_id)
                    except RowNotFound:
                        if i + 1 == len(kinds):
                            raise
                        continue  # not a message: maybe a task
                    return await repo.search(
                        candidate, vector, limit=limit, threshold=threshold, exclude_id=row_id
                    )
                raise AssertionError("unreachable")
            finally:
                await session.aclose()
        finally:
            await pool.close()

    _print_result(run_async(main), as_json)


@click.command()
@click.option("--kind", type=click.Choice([*SEARCH_KINDS, "all"]), default="all", show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 2048),
    default=256,
    show_default=True,
    help="Rows per provider call.",
)
@click.option("--follow", is_flag=True, help="Keep embedding new rows until Ctrl-C (during a model change).")
@click.option(
    "--embedder",
    type=click.Choice(PROVIDER_NAMES),
    default=None,
    help="Provider of the model to fill.",
)
@click.option("--model", "embedding_model", default=None, help="Model to fill [default: the configured one].")
@click.option(
    "--dimension", "embedding_dimension", type=int, default=None, help="Its vector size, if not the default."
)
@click.pass_context
def backfill(
    ctx: click.Context,
    kind: str,
    batch_size: int,
    follow: bool,
    embedder: str | None,
    embedding_model: str | None,
    embedding_dimension: int | None,
) -> None:
    """Embed every row that has no vector of the model for its current text.

    The model is the configured one (TASKSAGE_EMBEDDER, TASKSAGE_EMBEDDING_MODEL) or the one
    given; a model not seen before is registered (inactive) and gets its own indexes, so a new
    model fills in the background while search keeps using the active one. Resumable: stop it
    at any time (Ctrl-C lets the page in flight finish) and run it again; rows already done are
    skipped, none is missed, and no text is sent to the provider twice.
    """
    from streams.runtime import prepare_model
    from streams.search_runtime import metered

    settings = settings_from(
        ctx, embedder=embedder, embedding_model=embedding_model, embedding_dimension=embedding_dimension
    )
    kinds: list[SearchKind] = list(SEARCH_KINDS) if kind == "all" else [kind]  # type: ignore[list-item]

    async def main(stop: asyncio.Event) -> BackfillReport:
        from processors.embedders import create_embedder

        pool = await open_database_pool(settings, migrate=True)
        try:
            model = metered(settings, pool, create_embedder(settings.embedder_config()), settings.embedder)
            try:
                await prepare_model(settings, pool, model)
                with Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TextColumn("{task.fields[note]}"),
                    TimeRemainingColumn(),
                    console=console,
                ) as progress:
                    bars: dict[str, Any] = {}

                    def show(p: BackfillProgress) -> None:
                        label = f"{p.kind} ({model.model_name})"
                        if p.kind not in bars:
                            bars[p.kind] = progress.add_task(label, total=p.total, note="")
                        note = f"{p.embedded} embedded" + (f", waiting: {p.waiting}" if p.waiting else "")
                        progress.update(bars[p.kind], completed=p.done, total=p.total, note=note)

                    job = Backfill(pool, model, batch_size=batch_size, on_progress=show)
                    return await job.run(kinds, follow=follow, stop=stop)
            finally:
                await model.aclose()
        finally:
            await pool.close()

    report = run_async(main)
    for name, k in report.kinds.items():
        out.print(
            f"{name}: {k.rows} rows embedded with {report.model} ({k.embedded} texts sent to the provider, "
            f"{k.reused} reused by content hash), {report.remaining.get(name, 0)} still missing"
        )
    out.print(f"took {report.seconds:.1f}s")
    if report.stopped:
        console.print(f"[red]stopped:[/red] {report.stopped}")
        raise SystemExit(3)


COMMANDS = [search, similar, backfill]
