"""The size limits a newcomer can rely on: no module over 400 lines, no class over 250, no function
on the per-event path over 60; and no SQL outside processors/postgres, so "where is the query?"
has one answer."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "processors")
MAX_MODULE_LINES = 400
MAX_CLASS_LINES = 250
MAX_FUNCTION_LINES = 60
# The per-event path: decoding, the pipeline, the worker's loop.
PER_EVENT = ("processors/pipeline", "processors/contracts", "streams/worker")


def modules() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def relative(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def span(node: ast.AST) -> int:
    end = getattr(node, "end_lineno", None)
    start = getattr(node, "lineno", 0)
    decorators = getattr(node, "decorator_list", [])
    if decorators:
        start = min(d.lineno for d in decorators)
    return (end or start) - start + 1


def test_no_module_is_over_its_limit() -> None:
    over = {relative(p): n for p in modules() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert over == {}, f"modules over {MAX_MODULE_LINES} lines: {over}"


def test_no_class_is_over_its_limit() -> None:
    over = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef) and span(node) > MAX_CLASS_LINES:
                over[f"{relative(path)}:{node.name}"] = span(node)
    assert over == {}, f"classes over {MAX_CLASS_LINES} lines: {over}"


def test_no_function_on_the_per_event_path_is_over_its_limit() -> None:
    over = {}
    for path in modules():
        if not relative(path).startswith(PER_EVENT):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and span(node) > MAX_FUNCTION_LINES:
                over[f"{relative(path)}:{node.name}"] = span(node)
    assert over == {}, f"functions over {MAX_FUNCTION_LINES} lines on the per-event path: {over}"


SQL = re.compile(
    r"\b(SELECT\b.+\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+(TABLE|INDEX))\b",
    re.IGNORECASE | re.DOTALL,
)


def sql_literals(path: Path) -> list[int]:
    """Lines of string literals that read as statements on tables (docstrings are prose: skipped;
    session commands such as SET or ANALYZE are not statements on tables)."""
    tree = ast.parse(path.read_text())
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and SQL.search(node.value)
    ]


def test_sql_lives_in_processors_postgres_only() -> None:
    found = {
        relative(p): lines
        for p in modules()
        if not relative(p).startswith("processors/postgres/") and (lines := sql_literals(p))
    }
    assert found == {}, f"SQL outside processors/postgres: {found}"


# asyncpg's table methods: a bulk write or read of a table, whatever the string says.
TABLE_METHODS = frozenset({"copy_records_to_table", "copy_to_table", "copy_from_table", "copy_from_query"})
# Methods whose first argument is a statement: given a literal, the statement is written right here.
STATEMENT_METHODS = frozenset(
    {"execute", "executemany", "fetch", "fetchval", "fetchrow", "prepare", "cursor"}
)


def database_calls(path: Path) -> list[int]:
    """Lines of calls that talk to the database in SQL of their own: asyncpg's table methods, and
    statement methods given a string (or f-string) literal. Catches the session commands (SET,
    VACUUM, SHOW) and COPY calls that the pattern over literals above lets through."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        method = node.func.attr
        first = node.args[0] if node.args else None
        literal = isinstance(first, ast.JoinedStr) or (
            isinstance(first, ast.Constant) and isinstance(first.value, str)
        )
        if method in TABLE_METHODS or (method in STATEMENT_METHODS and literal):
            found.append(node.lineno)
    return found


def test_streams_call_no_statement_of_their_own() -> None:
    found = {
        relative(p): lines for p in sorted((ROOT / "streams").rglob("*.py")) if (lines := database_calls(p))
    }
    assert found == {}, f"SQL written or tables copied in streams/ (belongs in processors/postgres): {found}"
