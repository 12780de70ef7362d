"""Where the database reference loop's time goes, statement by statement (pure).

The loop hands in one `QueryTiming` per statement asyncpg's query logger saw; this module
groups them by normalised SQL text and says how much each costs per event, and how much of
the loop's wall time had at least one statement in flight.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

_WHITESPACE = re.compile(r"\s+")
_STRING = re.compile(r"'(?:[^']|'')*'")
# A bare number, not a $1 placeholder and not the digits inside an identifier like vectors_m1.
_NUMBER = re.compile(r"(?<![\w$.])\d+(?:\.\d+)?\b")
SQL_WIDTH = 80
TOP_STATEMENTS = 8


def normalise_sql(text: str) -> str:
    """One line per statement shape: whitespace collapsed, literals as `?`, trailing `;` gone,
    so statements built with different constants (a LIMIT, a model's table) add up together."""
    out = _STRING.sub("?", text)
    out = _NUMBER.sub("?", out)
    return _WHITESPACE.sub(" ", out).strip().rstrip(";").strip()


@dataclass(frozen=True, slots=True)
class QueryTiming:
    """One statement as the query logger saw it: raw SQL text, start and duration (seconds)."""

    sql: str
    started: float
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class StatementCost:
    sql: str  # normalised, cut to SQL_WIDTH characters
    calls: int
    total_s: float
    us_per_event: float
    share_of_database: float  # of the summed time of every statement

    def as_dict(self) -> dict[str, Any]:
        return {
            "sql": self.sql,
            "calls": self.calls,
            "total_ms": round(self.total_s * 1000, 2),
            "us_per_event": round(self.us_per_event, 1),
            "share_of_database": round(self.share_of_database, 3),
        }


def top_statements(
    timings: Iterable[QueryTiming], events: int, *, limit: int = TOP_STATEMENTS, width: int = SQL_WIDTH
) -> list[StatementCost]:
    """The costliest statement shapes by total time, costliest first (ties by text)."""
    totals: dict[str, tuple[int, float]] = {}
    shapes: dict[str, str] = {}  # raw text -> normalised: a loop repeats the same few texts
    for t in timings:
        shape = shapes.get(t.sql)
        if shape is None:
            shape = shapes[t.sql] = normalise_sql(t.sql)
        calls, total = totals.get(shape, (0, 0.0))
        totals[shape] = (calls + 1, total + t.elapsed_s)
    everything = sum(total for _, total in totals.values())
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1][1], kv[0]))[:limit]
    return [
        StatementCost(
            sql=shape[:width],
            calls=calls,
            total_s=total,
            us_per_event=total / events * 1e6 if events else 0.0,
            share_of_database=total / everything if everything else 0.0,
        )
        for shape, (calls, total) in ranked
    ]


def busy_seconds(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of (start, end) intervals: statements on parallel connections
    overlap, and their summed time would count the same wall-clock second twice."""
    busy = 0.0
    current: tuple[float, float] | None = None
    for start, end in sorted(intervals):
        if current is None or start > current[1]:
            if current is not None:
                busy += current[1] - current[0]
            current = (start, end)
        else:
            current = (current[0], max(current[1], end))
    if current is not None:
        busy += current[1] - current[0]
    return busy


@dataclass(frozen=True, slots=True)
class DatabaseLoopFigures:
    """One stream's run of the database reference loop."""

    events: int
    batches: int
    wall_s: float
    statements: int
    database_s: float  # summed time of every statement
    database_busy_s: float  # wall time with at least one statement in flight
    top: tuple[StatementCost, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "batches": self.batches,
            "wall_s": round(self.wall_s, 3),
            "eps": round(self.events / self.wall_s, 1) if self.wall_s > 0 else None,
            "statements": self.statements,
            "statements_per_event": round(self.statements / self.events, 2) if self.events else None,
            "database_ms_per_event": round(self.database_s / self.events * 1000, 3) if self.events else None,
            "db_share_of_wall": round(min(1.0, self.database_busy_s / self.wall_s), 3)
            if self.wall_s > 0
            else None,
            "top_statements": [s.as_dict() for s in self.top],
        }


def loop_figures(
    timings: Sequence[QueryTiming], events: int, batches: int, wall_s: float
) -> DatabaseLoopFigures:
    return DatabaseLoopFigures(
        events=events,
        batches=batches,
        wall_s=wall_s,
        statements=len(timings),
        database_s=sum(t.elapsed_s for t in timings),
        database_busy_s=busy_seconds((t.started, t.started + t.elapsed_s) for t in timings),
        top=tuple(top_statements(timings, events)),
    )
