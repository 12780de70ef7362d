"""`tasksage insights accuracy|failures|gaps|arms`: what predictions and outcomes add up to.

Reads the database of DATABASE_URL (or of a running `tasksage up`); see README "Insights".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson
from rich.console import Console
from rich.table import Table

from processors.insights.accuracy import WINDOWS, AccuracySummary, Breakdown
from processors.insights.arms import ArmReport
from processors.insights.failures import FailureCluster
from processors.insights.gaps import CapabilityGap
from processors.pipeline.insights import (
    InsightsBuilder,
    accuracy_window,
    arm_usage,
    failure_pattern,
    gap_report,
)
from streams.commands.session import out, run_async, settings_from
from streams.settings import Settings

T = TypeVar("T")


async def _with_builder(settings: Settings, use: Callable[[InsightsBuilder], Awaitable[T]]) -> T:
    from processors.embedders import create_embedder
    from streams.commands.search import database_url
    from streams.runtime import open_pool

    pool = await open_pool(settings, database_url(settings))
    embedder = create_embedder(settings.embedder_config())
    try:
        return await use(InsightsBuilder(pool, embedder, settings.insights_config()))
    finally:
        await embedder.aclose()
        await pool.close()


def _run(ctx: click.Context, use: Callable[[InsightsBuilder], Awaitable[T]]) -> T:
    settings = settings_from(ctx)

    async def main(stop: asyncio.Event) -> T:
        del stop
        return await _with_builder(settings, use)

    return run_async(main)


def _json(items: Any) -> None:
    out.print_json(orjson.dumps(items).decode())


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def _num(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def accuracy_table(b: Breakdown) -> Table:
    table = Table(title=f"Live accuracy, window {b.window!r} (outcomes scored against their prediction)")
    for h in (
        "scope",
        "outcomes",
        "predicted",
        "observed",
        "Brier",
        "log loss",
        "ECE",
        "duration err",
        "cost err",
    ):
        table.add_column(h, justify="left" if h == "scope" else "right")

    def row(name: str, s: AccuracySummary) -> None:
        table.add_row(
            name,
            str(s.outcomes),
            _pct(s.mean_probability),
            _pct(s.success_rate),
            _num(s.brier),
            _num(s.log_loss),
            _num(s.ece),
            "-" if s.duration_mae_ms is None else f"{s.duration_mae_ms / 1000:.1f}s",
            "-" if s.cost_mae_usd is None else f"${s.cost_mae_usd:.4f}",
        )

    row("all", b.overall)
    for (agent, model), s in b.per_arm.items():
        row(f"arm {agent}/{model}", s)
    for kind, s in b.per_kind.items():
        row(f"kind {kind or '(none)'}", s)
    return table


def failures_table(found: list[FailureCluster], limit: int = 10) -> Table:
    table = Table(
        title=f"Failure patterns ({len(found)} clusters, worst lift first; rates of the first arm listed)"
    )
    for h in (
        "size",
        "failure rate",
        "arm's overall",
        "lift",
        "p",
        "arms",
        "kinds",
        "example task",
        "example error",
    ):
        table.add_column(h, overflow="fold")
    for f in found[:limit]:
        example = f.representatives[0] if f.representatives else None
        table.add_row(
            str(f.size),
            _pct(f.failure_rate),
            _pct(f.overall_failure_rate),
            "inf" if f.lift == float("inf") else f"{f.lift:.1f}x",
            f"{f.p_value:.0e}" if f.p_value < 0.001 else f"{f.p_value:.3f}",
            ", ".join(f"{a.arm.agent}/{a.arm.model} ({a.failures})" for a in f.arms[:3]),
            ", ".join(k for k, _ in f.kinds[:3]),
            example.description[:60] if example else "",
            example.error_message[:50] if example else "",
        )
    return table


def gaps_table(gaps: list[CapabilityGap], target: float) -> Table:
    table = Table(title=f"Capability gaps: recent task clusters no arm is predicted to do at {target:.0%}")
    for h in ("tasks", "kinds", "best arm", "best predicted", "example"):
        table.add_column(h, overflow="fold")
    for g in gaps:
        table.add_row(
            str(g.tasks),
            ", ".join(k for k, _ in g.kinds[:3]),
            f"{g.best_arm.agent}/{g.best_arm.model}",
            _pct(g.best_probability),
            g.examples[0][:70] if g.examples else "",
        )
    return table


def arms_table(reports: list[ArmReport]) -> Table:
    table = Table(title="Agents and models in use")
    for h in ("arm", "schedules", "outcomes", "success", "mean cost", "pending", "done/hour", "flags"):
        table.add_column(h, justify="left" if h in ("arm", "flags") else "right")
    for r in reports:
        table.add_row(
            f"{r.arm.agent}/{r.arm.model}",
            _pct(r.schedule_share),
            _pct(r.outcome_share),
            _pct(r.success_rate),
            "-" if r.mean_cost_usd is None else f"${r.mean_cost_usd:.4f}",
            str(r.pending),
            f"{r.throughput_per_hour:.1f}",
            ", ".join(r.flags),
        )
    return table


JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON (the insights-snapshot fields).")


@click.group()
def insights() -> None:
    """What predictions and outcomes add up to: live accuracy, failure patterns, capability
    gaps, and the agents and models in use. The worker publishes the same every
    TASKSAGE_INSIGHTS_INTERVAL_S on the insights topic and as tasksage_live_* metrics."""


@insights.command()
@click.option(
    "--window", type=click.Choice(list(WINDOWS)), default=None, help="One window [default: all four]."
)
@JSON
@click.option(
    "--plot",
    "plot_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write calibration-<window>.png files into this directory (needs the `plots` extra).",
)
@click.pass_context
def accuracy(ctx: click.Context, window: str | None, as_json: bool, plot_dir: Path | None) -> None:
    """Brier, log loss, calibration (ECE), duration and cost error of outcomes against the
    predictions made for their tasks: overall, per arm and per kind, over the last hour, day,
    week and all time (windows by outcome time, summed from hour buckets)."""
    found = _run(ctx, lambda b: b.accuracy())
    chosen = [b for b in found if window is None or b.window == window]
    if as_json:
        _json([accuracy_window(b) for b in chosen])
    else:
        for b in chosen:
            out.print(accuracy_table(b))
    if plot_dir is not None:
        from processors.insights.plots import live_calibration_plot

        plot_dir.mkdir(parents=True, exist_ok=True)
        for b in chosen:
            path = plot_dir / f"calibration-{b.window}.png"
            if not live_calibration_plot(b.overall, f"live calibration, window {b.window!r}", path):
                raise click.ClickException("matplotlib is not installed: pip install 'tasksage[plots]'")
            Console(stderr=True).print(f"wrote {path}")


@insights.command()
@JSON
@click.pass_context
def failures(ctx: click.Context, as_json: bool) -> None:
    """Failed executions clustered by task and error message: size, the main arm's failure rate
    there against its overall rate (lift, binomial p), arms and kinds hit, representatives."""
    found = _run(ctx, lambda b: b.failures())
    if as_json:
        _json([failure_pattern(f) for f in found])
    else:
        out.print(failures_table(found))


@insights.command()
@JSON
@click.pass_context
def gaps(ctx: click.Context, as_json: bool) -> None:
    """Clusters of recent tasks where no arm's predicted success reaches TASKSAGE_SUCCESS_TARGET,
    with the best arm there and how many tasks landed in it."""
    found = _run(ctx, lambda b: b.gaps())
    if as_json:
        _json([gap_report(g) for g in found])
    else:
        out.print(gaps_table(found, settings_from(ctx).success_target))


@insights.command()
@JSON
@click.pass_context
def arms(ctx: click.Context, as_json: bool) -> None:
    """Per (agent, model): share of schedules and outcomes, success, cost, pending load against
    recent throughput; flagged unused, dominated or overloaded (TASKSAGE_INSIGHTS_* thresholds)."""
    found = _run(ctx, lambda b: b.arms())
    if as_json:
        _json([arm_usage(a) for a in found])
    else:
        out.print(arms_table(found))


COMMANDS = [insights]


async def summary_lines(builder: InsightsBuilder) -> list[str]:
    """A few lines naming the worst of each insight (`tasksage demo` ends with them)."""
    lines = []
    overall = next(b for b in await builder.accuracy() if b.window == "all").overall
    if overall.outcomes:
        lines.append(
            f"live accuracy: {overall.outcomes} outcomes scored, predicted {_pct(overall.mean_probability)} "
            f"vs observed {_pct(overall.success_rate)}, Brier {_num(overall.brier)}, ECE {_num(overall.ece)}"
        )
    # Patterns unlikely by chance (p < 0.05) and at least twice the arm's usual failure rate,
    # one per (arm, kind): the weaknesses worth acting on.
    shown: set[tuple[object, str]] = set()
    for f in await builder.failures():
        arm = f.arms[0]
        key = (arm.arm, f.kinds[0][0])
        if f.p_value >= 0.05 or f.lift < 2.0 or key in shown or len(shown) == 3:
            continue
        shown.add(key)
        lines.append(
            f"failure pattern: {arm.arm.agent}/{arm.arm.model} on {', '.join(k for k, _ in f.kinds[:2])}: "
            f"{f.size} failures, {_pct(f.failure_rate)} of its runs there vs {_pct(f.overall_failure_rate)} "
            f'overall; e.g. "{f.representatives[0].error_message}"'
        )
    for g in (await builder.gaps())[:2]:
        lines.append(
            f"capability gap: {g.tasks} recent {', '.join(k for k, _ in g.kinds[:2])} tasks; best arm "
            f"{g.best_arm.agent}/{g.best_arm.model} at {_pct(g.best_probability)} "
            f"(target {_pct(builder.config.success_target)}), e.g. {g.examples[0]!r}"
        )
    for flag in ("unused", "dominated", "overloaded"):
        flagged = [f"{r.arm.agent}/{r.arm.model}" for r in await builder.arms() if flag in r.flags]
        if flagged:
            lines.append(f"{flag} arms: {', '.join(flagged)}")
    return lines
