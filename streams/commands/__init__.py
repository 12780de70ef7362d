"""Subcommands beyond the core ones in streams/commands/cli.py. Each module listed here exposes
`COMMANDS: list[click.Command]`; add a module by appending its dotted name."""

COMMAND_MODULES: list[str] = [
    "streams.commands.evaluate",
    "streams.commands.demo",
    "streams.bench.command",
    "streams.commands.search",
    "streams.bench.search",
    "streams.commands.dlq",
]
