"""Subcommands beyond the core ones in streams/cli.py. Each module listed here exposes
`COMMANDS: list[click.Command]`; add a module by appending its dotted name."""

COMMAND_MODULES: list[str] = [
    "streams.evaluate_cli",
    "streams.demo",
    "streams.bench",
    "streams.search_cli",
    "streams.search_bench",
    "streams.dlq",
    "streams.commands.insights",
]
