"""The static tier table: the shipped file parses, bad rows fail with file and row named."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.errors import ConfigurationError
from processors.scheduling import Arm, TierOption, load_tiers, parse_tiers, tiers_for_kind

DEFAULT_TABLE = Path(__file__).resolve().parents[2] / "deploy" / "tiers.toml"

GOOD = """
[[kinds."*"]]
agent = "generalist"
model = "small"
cost_per_call_usd = 0.001
expected_duration_ms = 4000
prior_success = 0.7

[[kinds."*"]]
agent = "generalist"
model = "large"

[[kinds.code]]
agent = "coder"
model = "small"
cost_per_call_usd = 0
"""


def test_parses_rows_in_tier_order() -> None:
    rows = parse_tiers(GOOD, source="t.toml")
    assert rows == [
        TierOption("*", 1, Arm("generalist", "small"), 0.001, 4000.0, 0.7),
        TierOption("*", 2, Arm("generalist", "large"), None, None, None),
        TierOption("code", 1, Arm("coder", "small"), 0.0, None, None),
    ]


def test_tiers_for_kind_prefers_own_rows_then_star() -> None:
    rows = parse_tiers(GOOD)
    assert [r.arm for r in tiers_for_kind(rows, "code")] == [Arm("coder", "small")]
    star = [Arm("generalist", "small"), Arm("generalist", "large")]
    assert [r.arm for r in tiers_for_kind(rows, "unknown-kind")] == star
    assert [r.arm for r in tiers_for_kind(rows, None)] == star
    assert tiers_for_kind([], "code") == []


def test_tiers_for_kind_sorts_lowest_tier_first() -> None:
    rows = [
        TierOption("k", 2, Arm("a", "big")),
        TierOption("k", 1, Arm("a", "small")),
    ]
    assert [r.tier for r in tiers_for_kind(rows, "k")] == [1, 2]


def test_shipped_default_table_is_valid_and_has_a_star_default() -> None:
    rows = load_tiers(DEFAULT_TABLE)
    assert tiers_for_kind(rows, "no-such-kind"), "'*' default rows are required"
    for kind in {r.kind for r in rows}:
        own = tiers_for_kind(rows, kind)
        assert [r.tier for r in own] == list(range(1, len(own) + 1))
        costs = [r.cost_per_call_usd or 0.0 for r in own]
        assert all(r.cost_per_call_usd is not None and r.prior_success is not None for r in own)
        assert costs == sorted(costs), f"tier 1 should be the cheapest for {kind}"
    agents = {r.arm.agent for r in rows}
    models = {r.arm.model for r in rows}
    assert agents <= {"generalist", "coder", "researcher"}
    assert models <= {"small", "medium", "large"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("kinds = [", "not valid TOML"),
        ("", "no [[kinds.<kind>]] rows"),
        ("[other]\nx = 1", "unknown top-level keys"),
        ('[kinds]\ncode = "x"', "kinds.code must be an array of tables"),
        ('[[kinds.code]]\nmodel = "m"', "kinds.code[1]: 'agent' must be a non-empty string"),
        ('[[kinds.code]]\nagent = ""\nmodel = "m"', "kinds.code[1]: 'agent'"),
        (
            '[[kinds.code]]\nagent = "a"\nmodel = "m"\nprior_success = 1.3',
            "kinds.code[1]: 'prior_success' must be [0, 1]",
        ),
        (
            '[[kinds.code]]\nagent = "a"\nmodel = "m"\ncost_per_call_usd = -1',
            "'cost_per_call_usd' must be >= 0",
        ),
        (
            '[[kinds.code]]\nagent = "a"\nmodel = "m"\ncost_per_call_usd = true',
            "'cost_per_call_usd' must be a number",
        ),
        ('[[kinds.code]]\nagent = "a"\nmodel = "m"\nexpected_duration_ms = "5s"', "must be a number"),
        (
            '[[kinds.code]]\nagent = "a"\nmodel = "m"\ncolour = "red"',
            "kinds.code[1]: unknown keys ['colour']",
        ),
        (
            '[[kinds.code]]\nagent = "a"\nmodel = "m"\n[[kinds.code]]\nagent = "a"\nmodel = "m"',
            "kinds.code[2]: (a, m) is listed twice",
        ),
    ],
)
def test_bad_tables_name_file_and_row(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        parse_tiers(text, source="deploy/tiers.toml")
    message = str(info.value)
    assert message.startswith("deploy/tiers.toml:")
    assert fragment in message


def test_missing_file_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cannot read the tier table"):
        load_tiers(Path("/nonexistent/tasksage/tiers.toml"))
