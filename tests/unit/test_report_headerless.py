"""A dataset without a header (or whose header names arms it has no outcomes for) replays and
reports: every replay, the baselines included, routes only to arms the dataset has."""

from __future__ import annotations

import orjson

from processors.evaluation.dataset import parse_dataset, tier_rows
from processors.evaluation.offline import OfflineOptions, replay_offline, visible_prefix
from processors.evaluation.report import build_report
from processors.evaluation.runs import RunRecord, revealed_for
from processors.scheduling.tiers import ANY_KIND
from processors.scheduling.types import Arm, SchedulerConfig, TierOption

CHEAP, DEAR = Arm("coder", "small"), Arm("coder", "large")


def _lines(header: dict[str, object] | None, tasks: int = 30) -> list[bytes]:
    out = [orjson.dumps({"dataset": header})] if header is not None else []
    for i in range(tasks):
        out.append(
            orjson.dumps(
                {
                    "task": {"task_id": f"T{i}", "description": f"task {i}", "kind": "k" if i % 2 else "j"},
                    "outcomes": [
                        {"agent": "coder", "model": "small", "success": i % 3 == 0, "cost_usd": 0.01},
                        {"agent": "coder", "model": "large", "success": i % 5 != 0, "cost_usd": 1.0},
                    ],
                }
            )
        )
    return out


def _report(lines: list[bytes], feedback: str) -> dict[str, object]:
    data = parse_dataset(lines)
    config = SchedulerConfig(use_profiles=False, exploration_rate=0.0)
    visible = visible_prefix(len(data.tasks), 0)
    preds = replay_offline(data, config, OfflineOptions(neighbours=False, feedback=feedback), visible)  # type: ignore[arg-type]
    run = RunRecord(
        "main",
        0.8,
        feedback,  # type: ignore[arg-type]
        tuple(preds),
        tuple(visible),
        revealed_for(data, feedback, [p.chosen for p in preds]),  # type: ignore[arg-type]
    )
    return build_report(data, config, [run])


def test_a_dataset_without_a_header_gets_one_star_row_per_arm_cheapest_first() -> None:
    data = parse_dataset(_lines(None))
    assert [(r.kind, r.tier, r.arm) for r in tier_rows(data)] == [(ANY_KIND, 1, CHEAP), (ANY_KIND, 2, DEAR)]


def test_tier_rows_of_arms_the_dataset_lacks_are_dropped_and_star_rows_added() -> None:
    header = {
        "name": "x",
        "tiers": [
            {"kind": "k", "agent": "generalist", "model": "medium"},
            {"kind": "k", "agent": "coder", "model": "large"},
        ],
    }
    rows = tier_rows(parse_dataset(_lines(header)))
    assert [(r.kind, r.arm) for r in rows] == [("k", DEAR), (ANY_KIND, CHEAP), (ANY_KIND, DEAR)]
    assert all(isinstance(r, TierOption) for r in rows)


def test_the_report_of_a_headerless_dataset_has_every_routing_row() -> None:
    for feedback in ("full", "bandit"):
        report = _report(_lines(None), feedback)
        names = [row["policy"] for row in report["routing"]["rows"]]  # type: ignore[index]
        assert "base rates per kind (target 0.8)" in names
        assert "static tier table" in names


def test_the_report_survives_a_header_whose_tiers_name_unknown_arms() -> None:
    header = {"name": "x", "tiers": [{"kind": "*", "agent": "generalist", "model": "medium"}]}
    report = _report(_lines(header), "bandit")
    shares = [row["shares"] for row in report["routing"]["rows"]]  # type: ignore[index]
    assert all(set(s) <= {"coder/small", "coder/large"} for s in shares)
