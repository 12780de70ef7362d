"""README.md is part of the contract: its configuration table must match Settings, and its
example events must be valid against the published schemas."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import AliasChoices

from processors.contracts.codec import validate_output
from streams.settings import REPO_ROOT, Settings

README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

# Example headings in "Topics and event contracts" -> the schema the example must satisfy.
EXAMPLE_SCHEMAS = {
    "task-created": "task-created",
    "execution-result": "execution-result",
    "message-ingested": "message-ingested",
    "task-schedules": "task-schedule",
    "schedule-snapshots": "schedule-snapshot",
    "message-duplicates": "message-duplicate",
}


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def env_names(name: str) -> set[str]:
    alias = Settings.model_fields[name].validation_alias
    if isinstance(alias, AliasChoices):
        return {str(choice) for choice in alias.choices}
    return {f"TASKSAGE_{name.upper()}"}


def shown_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value.relative_to(REPO_ROOT)) if value.is_absolute() else str(value)
    return str(value)


def documented_rows() -> dict[frozenset[str], str]:
    rows: dict[frozenset[str], str] = {}
    for line in section("Configuration").splitlines():
        if not line.startswith("| `"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        names = frozenset(re.findall(r"`([A-Z0-9_]+)`", cells[0]))
        rows[names] = cells[1].strip("`")
    return rows


def test_configuration_table_lists_every_setting_with_its_default() -> None:
    rows = documented_rows()
    expected = {frozenset(env_names(n)): shown_default(f.default) for n, f in Settings.model_fields.items()}
    missing = sorted(" / ".join(sorted(k)) for k in expected.keys() - rows.keys())
    stale = sorted(" / ".join(sorted(k)) for k in rows.keys() - expected.keys())
    assert not missing, f"settings missing from the README configuration table: {missing}"
    assert not stale, f"README configuration rows without a setting: {stale}"
    wrong = {" / ".join(sorted(k)): (rows[k], d) for k, d in expected.items() if rows[k] != d}
    assert not wrong, f"README defaults differ from Settings (README, Settings): {wrong}"


@pytest.mark.parametrize("heading", sorted(EXAMPLE_SCHEMAS))
def test_readme_example_event_is_valid(heading: str) -> None:
    topics = section("Topics and event contracts")
    match = re.search(rf"^#### `{re.escape(heading)}`\n.*?```json\n(.*?)```", topics, re.S | re.M)
    assert match, f"README has no JSON example under #### `{heading}`"
    validate_output(EXAMPLE_SCHEMAS[heading], orjson.dumps(orjson.loads(match.group(1))))
