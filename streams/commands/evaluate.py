"""The evaluation commands: `tasksage evaluate`, `tasksage simulate`, `tasksage convert-routellm`,
and the report files (report.json, PNGs, schedules.jsonl). The replay itself is streams/commands/evaluate_driver.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import click

from processors.embedders.providers import PROVIDER_NAMES
from processors.errors import TasksageError
from processors.evaluation.dataset import Dataset
from processors.evaluation.offline import Feedback
from processors.evaluation.replay import schedule_record
from processors.evaluation.runs import RunRecord
from streams.commands.evaluate_driver import ReplayOptions, evaluate


def write_report(
    report: dict[str, Any],
    directory: Path,
    runs: list[RunRecord] | None = None,
    dataset: Dataset | None = None,
) -> list[Path]:
    """report.json, the PNGs, and (given the runs) schedules.jsonl: every schedule of every run with
    what it could see and what was then revealed, for audits and offline re-analysis."""
    import orjson

    from processors.evaluation.plots import write_plots

    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "report.json"
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    written = [path, *write_plots(report, directory)]
    if runs and dataset is not None:
        records = directory / "schedules.jsonl"
        with records.open("wb") as handle:
            for run in runs:
                for item, pred, seen, shown in zip(
                    dataset.tasks, run.predictions, run.visible, run.revealed, strict=True
                ):
                    handle.write(
                        orjson.dumps(schedule_record(run, item.task.task_id, pred, seen, shown)) + b"\n"
                    )
        written.append(records)
    return written


# --- command line ---------------------------------------------------------------------------


def _values(text: str | None) -> list[float] | None:
    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected dollar amounts separated by commas, got {text!r}") from None
    if not values or any(not v > 0.0 for v in values):
        raise click.BadParameter("success values must be positive dollar amounts")
    return values


def _targets(text: str) -> list[float]:
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise click.BadParameter(f"expected numbers separated by commas, got {text!r}") from None
    if not values or any(not 0.0 <= v <= 1.0 for v in values):
        raise click.BadParameter("success targets must be in [0, 1]")
    return values


@click.command("evaluate")
@click.option(
    "--dataset", "dataset_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True
)
@click.option(
    "--feedback",
    type=click.Choice(["full", "bandit"]),
    default="full",
    show_default=True,
    help="Reveal every arm's outcome, or only the chosen arm's.",
)
@click.option(
    "--embedder",
    type=click.Choice(PROVIDER_NAMES),
    default=None,
    help="Embedding provider [default: the configured one, hash].",
)
@click.option(
    "--reveal-delay",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Up to N tasks in flight: task i waits only for the outcomes of tasks < i - N.",
)
@click.option(
    "--success-target",
    "targets_text",
    default="0.8",
    show_default=True,
    help="Success target; several (comma-separated) run one live replay each.",
)
@click.option(
    "--success-value",
    "values_text",
    default=None,
    help="Choose by the value rule instead (TASKSAGE_SUCCESS_VALUE_USD): what one success is worth "
    "in dollars; several (comma-separated) run one replay each, and the success target is then only "
    "reported against.",
)
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Replay only the first N tasks.")
@click.option(
    "--report",
    "report_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("evaluation-report"),
    show_default=True,
    help="Where report.json and PNGs go.",
)
@click.option(
    "--ablate-profiles", is_flag=True, help="Also replay with profile vectors off (the ablation row)."
)
@click.option(
    "--offline",
    is_flag=True,
    help="Replay in memory with the same decision code (no broker, no database; exact neighbour "
    "search) and the learned layer of the estimate (TASKSAGE_LEARNED_*); seconds instead of minutes.",
)
@click.option(
    "--withhold-kind",
    is_flag=True,
    help="Drop `kind` from every task before the replay; the tier table keeps only its '*' rows.",
)
@click.option(
    "--orders",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With --offline: also replay N - 1 seeded shuffles of the tasks and report, per order, "
    "tasksage's gap to the best base rate, its ECE against the per-arm base rate's and, on two-arm "
    "data, APGR (the main report stays the file's order).",
)
@click.option(
    "--exploration-rate",
    type=click.FloatRange(0.0, 1.0),
    default=None,
    help="[default: 0 with full feedback, TASKSAGE_EXPLORATION_RATE with bandit]",
)
@click.pass_context
def evaluate_command(
    ctx: click.Context,
    dataset_path: Path,
    feedback: Feedback,
    embedder: str | None,
    reveal_delay: int,
    targets_text: str,
    values_text: str | None,
    limit: int | None,
    report_dir: Path,
    ablate_profiles: bool,
    offline: bool,
    withhold_kind: bool,
    orders: int,
    exploration_rate: float | None,
) -> None:
    """Replay a dataset through the real pipeline, prequentially, and score the schedules.

    Tasks are published in order; each task's outcomes become execution-result events only after
    its schedule was received (all arms' with --feedback full, the chosen arm's with bandit).
    Writes REPORT/report.json, calibration.png, cost_success.png and schedules.jsonl (every
    schedule with what it could see), and prints the tables.
    """
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from processors.evaluation.dataset import load_dataset, without_kinds
    from streams.commands.session import console, out, run_async, settings_from, until_stopped

    targets = _targets(targets_text)
    values = _values(values_text)
    if orders > 1 and not offline:
        console.print("[red]error:[/red] --orders needs --offline (each order is one more full replay)")
        raise SystemExit(2)
    settings = settings_from(ctx, embedder=embedder)
    try:
        dataset = load_dataset(dataset_path).head(limit)
        if withhold_kind:
            dataset = without_kinds(dataset)
    except TasksageError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
    options = ReplayOptions(feedback=feedback, reveal_delay=reveal_delay, exploration_rate=exploration_rate)
    console.print(
        f"evaluating {dataset.header.name}: {len(dataset.tasks)} tasks, {len(dataset.arms)} arms, {feedback} feedback, "
        f"embedder {settings.embedder}, reveal delay {reveal_delay}, "
        + (
            f"success values {', '.join(f'${v:g}' for v in values)}"
            if values
            else f"targets {', '.join(f'{t:g}' for t in targets)}"
        )
    )

    runs: list[RunRecord] = []
    if offline:
        report = _offline(
            settings, dataset, (targets, values), feedback, (reveal_delay, orders), exploration_rate, runs
        )
        written = write_report(report, report_dir, runs, dataset)
        print_report(report, out)
        console.print("wrote " + ", ".join(str(p) for p in written))
        return

    async def main(stop: asyncio.Event) -> dict[str, Any]:
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TimeElapsedColumn(),
            console=console,
        ) as bar:
            task = bar.add_task("replay", total=len(dataset.tasks))

            def progress(phase: str, done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            return await until_stopped(
                evaluate(
                    settings,
                    dataset,
                    targets,
                    options,
                    values=values,
                    ablate_profiles=ablate_profiles,
                    progress=progress,
                    keep_runs=runs,
                ),
                stop,
            )

    report = run_async(main)
    written = write_report(report, report_dir, runs, dataset)
    print_report(report, out)
    console.print("wrote " + ", ".join(str(p) for p in written))


def _offline(
    settings: Any,
    dataset: Dataset,
    settings_to_run: tuple[list[float], list[float] | None],
    feedback: Feedback,
    delay_and_orders: tuple[int, int],
    exploration_rate: float | None,
    runs: list[RunRecord],
) -> dict[str, Any]:
    """The offline report in the file's order; with more than one order, also the order spread
    (the tasks embedded once, each shuffle reordering the same vectors). The spread scores the
    main run only, so each shuffle replays the first target or value alone."""
    from processors.evaluation.orders import order_summary, score_gaps, shuffled
    from streams.commands.evaluate_offline import embed_dataset, offline_report
    from streams.commands.session import console
    from streams.worker.blas import limit_blas_threads

    targets, values = settings_to_run
    reveal_delay, orders = delay_and_orders
    vectors = asyncio.run(embed_dataset(settings, dataset))
    # From here the replay runs on this thread alone, and its text-model updates are as small as
    # the worker's: a second BLAS thread would spin (every BLAS library is loaded by now).
    limit_blas_threads(settings.blas_threads)

    def replay(
        data: Dataset, vecs: Any, keep: list[RunRecord] | None, chosen: tuple[list[float], list[float] | None]
    ) -> dict[str, Any]:
        return offline_report(
            settings, data, vecs, chosen[0], feedback, reveal_delay, exploration_rate, keep, values=chosen[1]
        )

    report = replay(dataset, vectors, runs, (targets, values))
    main_only = (targets[:1], values[:1] if values else None)
    if orders > 1:
        gaps = [score_gaps(report)]
        seeds: list[int | None] = [None]
        for seed in range(1, orders):
            console.print(f"order {seed + 1} of {orders}: shuffle seed {seed}")
            order, permutation = shuffled(dataset, seed)
            gaps.append(score_gaps(replay(order, vectors[permutation], None, main_only)))
            seeds.append(seed)
        report["orders"] = order_summary(gaps, seeds)
    return report


def print_report(report: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    from processors.evaluation.tables import summary_tables

    if not console.is_terminal:
        console.width = max(console.width, 160)  # files and pipes: no wrapping inside table cells
    run = report["run"]
    console.print(
        f"{report['dataset']['name']}: {run['tasks']} tasks in {run['seconds']} s ({run['tasks_per_second']} tasks/s), "
        f"{run['feedback']} feedback, embedder {run['embedder']}, reveal delay {run['reveal_delay']}"
    )
    for text in summary_tables(report):
        table = Table(*text.header, title=text.title, title_justify="left")
        for row in text.rows:
            table.add_row(*row)
        console.print(table)
    explored = report.get("exploration") or {}
    if explored.get("explorations"):
        console.print(
            f"Exploration: {explored['explorations']} schedules ({explored['share_of_tasks']:.1%}) tried another "
            f"arm than the greedy one; extra cost ${explored['extra_cost_vs_greedy_usd']:.4f} "
            f"({explored['extra_cost_share_of_run']:.1%} of the run), success rate "
            f"{explored['success_difference_vs_greedy']:+.4f} against the greedy picks."
        )
    sweep = report.get("routing", {}).get("sweep_method")
    if sweep:
        console.print(f"Target sweep: {sweep}.")
    if report["dataset"].get("attribution"):
        console.print(f"Data: {report['dataset']['attribution']}")


@click.command("simulate")
@click.option("--tasks", type=click.IntRange(min=1), default=5000, show_default=True)
@click.option("--seed", type=int, default=None, help="[default: 11]")
@click.option(
    "--profile",
    type=click.Choice(["default", "agent-work", "no-signal"]),
    default="default",
    show_default=True,
    help="default: 8 families x 9 arms, descriptions hint at family and difficulty; agent-work: 24 "
    "arms with prices 100x apart, 12 uneven repositories, success 0.2-0.75, descriptions that say "
    "little beyond the repository; no-signal: the default world with descriptions unrelated to the task.",
)
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Dataset JSONL to write."
)
def simulate_command(tasks: int, seed: int | None, profile: str, output: Path) -> None:
    """Write a synthetic evaluation dataset with ground truth (task families with latent
    difficulty, agents and models with different competence per family, costs, noisy durations)."""
    from processors.evaluation.dataset import write_dataset
    from processors.evaluation.simulate import DEFAULT_SEED, generate
    from processors.evaluation.simulate_agents import generate_agent_work
    from streams.commands.session import out

    chosen_seed = DEFAULT_SEED if seed is None else seed
    if profile == "agent-work":
        data = generate_agent_work(tasks, chosen_seed)
    else:
        data = generate(tasks, chosen_seed, text_signal=profile == "default")
    count = write_dataset(data, output)
    out.print(f"wrote {count} tasks to {output}")


@click.command("convert-routellm")
@click.argument("csv_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--benchmark", type=click.Choice(["mmlu", "gsm8k"]), default=None, help="[default: from the file name]"
)
@click.option("--seed", type=int, default=None, help="Seed of the time-order shuffle [default: 2024].")
@click.option(
    "--output", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Dataset JSONL to write."
)
def convert_routellm_command(csv_path: Path, benchmark: str | None, seed: int | None, output: Path) -> None:
    """Convert RouteLLM's per-prompt correctness CSV (MMLU or GSM8K) into an evaluation dataset."""
    from processors.evaluation.dataset import write_dataset
    from processors.evaluation.routellm import DEFAULT_SEED, convert_file, guess_benchmark
    from streams.commands.session import out

    chosen = guess_benchmark(csv_path) if benchmark is None else benchmark
    dataset = convert_file(csv_path, chosen, DEFAULT_SEED if seed is None else seed)  # type: ignore[arg-type]
    count = write_dataset(dataset, output)
    out.print(f"wrote {count} tasks to {output}")
    out.print(f"Data: {dataset.header.attribution}")


COMMANDS = [evaluate_command, simulate_command, convert_routellm_command]
