"""The `tasksage` subcommands, one module per command group. Each module listed here exposes
`COMMANDS: list[click.Command]`; add a module by appending its dotted name."""

COMMAND_MODULES: list[str] = [
    "streams.commands.run",
    "streams.commands.events",
    "streams.commands.replay",
    "streams.commands.status",
    "streams.commands.evaluate",
    "streams.commands.demo",
    "streams.bench.command",
    "streams.commands.search",
    "streams.commands.embeddings",
    "streams.bench.search",
    "streams.commands.dlq",
    "streams.commands.api",
    "streams.bench.api",
    "streams.commands.insights",
]
