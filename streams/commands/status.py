"""`tasksage status`: services, topics, lag, row counts, embedding coverage."""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import click
import orjson
from aiokafka import TopicPartition
from rich.table import Table

from processors.embedders.metered import utc_today
from processors.postgres import coverage, embedding_models, index_queue, overview
from processors.postgres.pool import Pool
from processors.postgres.usage import usage_totals
from processors.search.types import SEARCH_KINDS
from streams.commands.session import out, run_async, settings_from
from streams.kafka import make_consumer, partitions_of
from streams.settings import Settings

# What `status` counts in each table: rows, except the outbox, whose rows hold a batch each.


@dataclass(slots=True)
class StatusReport:
    bootstrap: str
    database: str
    topics: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    coverage: list[dict[str, Any]] = field(default_factory=list)
    models: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    budget: dict[str, float | None] = field(default_factory=dict)
    pgvector: str = ""


async def topic_report(
    settings: Settings, bootstrap: str, positions: dict[tuple[str, int], int]
) -> list[dict[str, Any]]:
    known = await partitions_of(settings, bootstrap, settings.all_topics())
    consumer = make_consumer(settings, bootstrap, group_id=None)
    await consumer.start()
    try:
        out = []
        for topic in settings.all_topics():
            parts = known[topic]
            if not parts:
                out.append({"topic": topic, "partitions": 0, "records": 0, "lag": None})
                continue
            tps = [TopicPartition(topic, p) for p in parts]
            ends = await consumer.end_offsets(tps)
            begins = await consumer.beginning_offsets(tps)
            records = sum(ends[tp] - begins[tp] for tp in tps)
            lag = None
            if topic in settings.input_topics.values():
                lag = sum(max(0, ends[tp] - positions.get((topic, tp.partition), begins[tp])) for tp in tps)
            out.append({"topic": topic, "partitions": len(parts), "records": records, "lag": lag})
        return out
    finally:
        await consumer.stop()


async def gather_status(settings: Settings, bootstrap: str, dsn_label: str, pool: Pool) -> StatusReport:
    report = StatusReport(bootstrap, dsn_label)
    async with pool.acquire() as conn:
        for table in overview.COUNTED_TABLES:
            report.rows[table] = await overview.row_count(conn, table)
        # Message vectors waiting for the message index (sql/0008).
        report.rows["message_index_queue"] = await index_queue.message_queue_length(conn)
        version = await embedding_models.pgvector_version(conn)
        report.pgvector = ".".join(map(str, version))
        report.models = await overview.models(conn)
        for kind in SEARCH_KINDS:
            for model in report.models:
                cov = await coverage.coverage(conn, kind, model["name"])
                report.coverage.append(
                    {
                        "table": cov.table,
                        "model": cov.model,
                        "active": model["active"],
                        "embedded": cov.embedded,
                        "total": cov.total,
                        "missing": cov.missing,  # rows without a vector for their current text
                        "coverage": cov.ratio,
                    }
                )
        report.usage = [dataclasses.asdict(u) for u in await usage_totals(conn)]
        spent = await overview.spent_on(conn, utc_today())
        report.budget = {"daily_usd": settings.embedding_daily_budget_usd, "spent_today_usd": spent}
        positions = await overview.group_positions(conn, settings.consumer_group)
    report.topics = await topic_report(settings, bootstrap, positions)
    return report


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show services, topics, consumer lag, row counts and embedding coverage."""
    from streams.runtime import open_pool, resolve_endpoints

    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> Any:
        endpoints = resolve_endpoints(settings)
        pool = await open_pool(settings, endpoints.dsn)
        try:
            label = endpoints.dsn.split("@")[-1]  # never print credentials
            return await gather_status(settings, endpoints.bootstrap, label, pool)
        finally:
            await pool.close()

    report = run_async(main)
    if as_json:
        out.print_json(orjson.dumps(dataclasses.asdict(report), default=str).decode())
        return
    out.print(f"broker   {report.bootstrap}\ndatabase {report.database} (pgvector {report.pgvector})")
    table = Table("topic", "partitions", "records", "lag", title="topics")
    for t in report.topics:
        table.add_row(
            t["topic"], str(t["partitions"]), str(t["records"]), "" if t["lag"] is None else str(t["lag"])
        )
    out.print(table)
    rows = Table("table", "rows", title="rows")
    for name, count in report.rows.items():
        rows.add_row(name, str(count))
    out.print(rows)
    cov = Table("table", "model", "reads", "embedded", "missing", "coverage", title="embedding coverage")
    for c in report.coverage:
        cov.add_row(
            c["table"],
            c["model"],
            "active" if c["active"] else "",
            f"{c['embedded']}/{c['total']}",
            str(c["missing"]),
            f"{c['coverage']:.1%}",
        )
    out.print(cov)
    budget = report.budget.get("daily_usd")
    spend = Table(
        "provider", "model", "texts", "tokens", "requests", "est. cost (USD)", title="embedding usage"
    )
    for u in report.usage:
        spend.add_row(
            u["provider"],
            u["model"],
            str(u["texts"]),
            str(u["tokens"]),
            str(u["requests"]),
            f"{u['cost_usd']:.4f}",
        )
    out.print(spend)
    out.print(
        f"spent today (UTC): ${report.budget.get('spent_today_usd') or 0:.4f}"
        + (f" of a ${budget:.2f} daily budget" if budget is not None else ", no daily budget")
    )


COMMANDS = [status]
