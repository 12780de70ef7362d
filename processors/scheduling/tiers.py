"""The static tier table: the cold-start answer per task kind, parsed from TOML.

File format (see deploy/tiers.toml)::

    [[kinds."*"]]                 # one array entry per tier; the first entry is tier 1 (cheapest)
    agent = "generalist"
    model = "small"
    cost_per_call_usd = 0.0005    # optional
    expected_duration_ms = 4000   # optional
    prior_success = 0.65          # optional, in [0, 1]
    capabilities = ["python"]     # optional: what the arm can do; an arm's capabilities are the
                                  # union over its rows, so declaring them once is enough

A '*' kind holds the defaults for kinds without rows of their own.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path

from processors.errors import ConfigurationError
from processors.scheduling.types import Arm, TierOption

ANY_KIND = "*"
_ROW_KEYS = frozenset(
    {"agent", "model", "cost_per_call_usd", "expected_duration_ms", "prior_success", "capabilities"}
)


def load_tiers(path: Path) -> list[TierOption]:
    """Read and parse a tier table file; every problem is a ConfigurationError naming file and row."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the tier table: {exc}") from exc
    return parse_tiers(text, source=str(path))


def parse_tiers(text: str, source: str = "<tiers>") -> list[TierOption]:
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: not valid TOML: {exc}") from exc
    unknown = set(doc) - {"kinds"}
    if unknown:
        raise ConfigurationError(f"{source}: unknown top-level keys {sorted(unknown)}; expected only [kinds]")
    kinds = doc.get("kinds", {})
    if not isinstance(kinds, dict) or not kinds:
        raise ConfigurationError(
            f"{source}: no [[kinds.<kind>]] rows", hint='add at least a [[kinds."*"]] row'
        )
    rows: list[TierOption] = []
    for kind, entries in kinds.items():
        if not kind.strip():
            raise ConfigurationError(f"{source}: an empty kind name")
        if not isinstance(entries, list) or not entries:
            raise ConfigurationError(f"{source}: kinds.{kind} must be an array of tables ([[kinds.{kind}]])")
        seen: set[Arm] = set()
        for i, entry in enumerate(entries, start=1):
            where = f"{source}: kinds.{kind}[{i}]"
            if not isinstance(entry, dict):
                raise ConfigurationError(f"{where}: must be a table")
            row = _parse_row(entry, kind, i, where)
            if row.arm in seen:
                raise ConfigurationError(f"{where}: ({row.arm.agent}, {row.arm.model}) is listed twice")
            seen.add(row.arm)
            rows.append(row)
    return rows


def _parse_row(entry: Mapping[str, object], kind: str, tier: int, where: str) -> TierOption:
    unknown = set(entry) - _ROW_KEYS
    if unknown:
        raise ConfigurationError(f"{where}: unknown keys {sorted(unknown)}; allowed: {sorted(_ROW_KEYS)}")
    return TierOption(
        kind=kind,
        tier=tier,
        arm=Arm(_name(entry, "agent", where), _name(entry, "model", where)),
        cost_per_call_usd=_number(entry, "cost_per_call_usd", where, lo=0.0),
        expected_duration_ms=_number(entry, "expected_duration_ms", where, lo=0.0),
        prior_success=_number(entry, "prior_success", where, lo=0.0, hi=1.0),
        capabilities=_names(entry, "capabilities", where),
    )


def _names(entry: Mapping[str, object], key: str, where: str) -> frozenset[str]:
    value = entry.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigurationError(f"{where}: '{key}' must be a list of non-empty strings, got {value!r}")
    return frozenset(str(v).strip() for v in value)


def _name(entry: Mapping[str, object], key: str, where: str) -> str:
    value = entry.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{where}: '{key}' must be a non-empty string, got {value!r}")
    return value


def _number(
    entry: Mapping[str, object], key: str, where: str, lo: float, hi: float | None = None
) -> float | None:
    value = entry.get(key)
    if value is None:
        return None
    # bool is an int subclass: `true` for a cost is a typo, not 1.0.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{where}: '{key}' must be a number, got {value!r}")
    number = float(value)
    if not math.isfinite(number) or number < lo or (hi is not None and number > hi):
        bounds = f"[{lo:g}, {hi:g}]" if hi is not None else f">= {lo:g}"
        raise ConfigurationError(f"{where}: '{key}' must be {bounds}, got {value!r}")
    return number


def tiers_for_kind(rows: Iterable[TierOption], kind: str | None) -> list[TierOption]:
    """The kind's own rows, else the '*' rows; lowest tier first."""
    all_rows = list(rows)
    own = [r for r in all_rows if kind is not None and r.kind == kind]
    chosen = own or [r for r in all_rows if r.kind == ANY_KIND]
    return sorted(chosen, key=lambda r: (r.tier, r.arm))
