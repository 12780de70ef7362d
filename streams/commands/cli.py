"""The `tasksage` command line: the root group and its options. Each command group lives in its
own module of this package, listed in COMMAND_MODULES (streams/commands/__init__.py). Every
option can also be set by environment variable (see README)."""

from __future__ import annotations

from pathlib import Path

import click

from processors.errors import ConfigurationError
from streams.commands.session import console, setup_logging


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--log-level", envvar="TASKSAGE_LOG_LEVEL", default="INFO", show_default=True, help="Log level."
)
@click.option(
    "--data-dir",
    envvar="TASKSAGE_DATA_DIR",
    type=click.Path(path_type=Path),
    default=Path(".tasksage"),
    show_default=True,
    help="Where the embedded broker and database keep their files.",
)
@click.pass_context
def cli(ctx: click.Context, log_level: str, data_dir: Path) -> None:
    """tasksage: learn from task outcomes on Kafka, publish optimized schedules.

    Without KAFKA_BOOTSTRAP_SERVERS / DATABASE_URL, `tasksage up` starts an embedded
    Kafka-protocol broker (Tansu) and PostgreSQL + pgvector (pgserver); the other commands
    then find them through DATA_DIR/services.json.
    """
    setup_logging(log_level)
    ctx.obj = {"data_dir": data_dir}


def _register_optional_commands() -> None:
    import importlib

    from streams.commands import COMMAND_MODULES

    for name in COMMAND_MODULES:
        for command in importlib.import_module(name).COMMANDS:
            cli.add_command(command)


def main() -> None:
    import warnings

    # pgserver asks platformdirs for a runtime dir it does not need; the warning is noise.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    _register_optional_commands()
    try:
        cli(standalone_mode=True)
    except ConfigurationError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2) from None
