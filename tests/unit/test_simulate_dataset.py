"""The evaluation dataset format (schema, parsing, errors) and the RouteLLM converters."""

from __future__ import annotations

import orjson
import pytest

from processors.evaluation.dataset import DatasetError, dataset_lines, parse_dataset
from processors.evaluation.routellm import STRONG, WEAK, convert_rows
from processors.scheduling.types import Arm


def _line(doc: object) -> bytes:
    return orjson.dumps(doc)


TASK = {
    "task": {"task_id": "t1", "description": "fix the login bug", "kind": "code"},
    "outcomes": [{"agent": "coder", "model": "small", "success": True, "cost_usd": 0.01}],
}


def test_header_and_tasks_parse_and_missing_envelope_fields_are_filled() -> None:
    header = {
        "dataset": {
            "name": "demo",
            "arms": [{"agent": "coder", "model": "small", "cost_usd": 0.02}],
            "tiers": [{"kind": "*", "agent": "coder", "model": "small"}],
        }
    }
    second = {**TASK, "task": {**TASK["task"], "task_id": "t2"}}
    data = parse_dataset([_line(header), b"", _line(TASK), _line(second)])
    assert data.header.name == "demo" and data.arms == (Arm("coder", "small"),)
    assert [t.task.event_id for t in data.tasks] == ["eval-task:t1", "eval-task:t2"]
    assert data.tasks[0].task.occurred_at < data.tasks[1].task.occurred_at  # time order kept
    assert data.header.tiers[0].tier == 1


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([b"{not json"], "line 1: not JSON"),
        ([_line({"task": {"task_id": "t"}, "outcomes": []})], "line 1: does not match"),
        ([_line(TASK), _line(TASK)], "appears twice"),
        ([_line(TASK), _line({"dataset": {"name": "late"}})], "header must be the first line"),
        ([_line({**TASK, "task": {**TASK["task"], "priority": 500}})], "not a valid task-created event"),
        ([_line({"dataset": {"name": "empty"}})], "no tasks"),
    ],
)
def test_malformed_datasets_are_rejected_with_the_line(lines: list[bytes], message: str) -> None:
    with pytest.raises(DatasetError, match=message):
        parse_dataset(lines)


def _rows(n: int) -> list[dict[str, str]]:
    return [
        {
            "subject": f"s{i % 3}",
            "prompt": f"question {i} " + "x" * (4 * i),
            "mixtral_8x7b_instruct_correct": str(i % 2),
            "gpt4_1106_preview_correct": "1",
        }
        for i in range(n)
    ]


def test_routellm_conversion_is_a_seeded_shuffle_with_two_priced_arms() -> None:
    data = convert_rows(_rows(30), "mmlu", seed=7)
    assert [t.task.task_id for t in data.tasks] == [
        t.task.task_id for t in convert_rows(_rows(30), "mmlu", seed=7).tasks
    ]
    assert [t.task.task_id for t in data.tasks] != sorted(t.task.task_id for t in data.tasks)  # shuffled
    assert {t.task.kind for t in data.tasks} == {"s0", "s1", "s2"}
    item = next(t for t in data.tasks if t.task.task_id == "mmlu-00004")  # row 4: prompt of index 3
    weak, strong = item.outcome(WEAK), item.outcome(STRONG)
    assert weak is not None and strong is not None
    assert (weak.success, strong.success) == (True, True)
    assert strong.cost_usd / weak.cost_usd == pytest.approx(24.7 / 0.24, rel=1e-3)
    assert "lm-sys/RouteLLM" in data.header.attribution and "Apache-2.0" in data.header.attribution
    assert parse_dataset(list(dataset_lines(data))).tasks[0].outcomes == data.tasks[0].outcomes


def test_gsm8k_has_one_kind_and_longer_completions() -> None:
    rows = [{k: v for k, v in r.items() if k != "subject"} for r in _rows(4)]
    gsm = convert_rows(rows, "gsm8k")
    assert {t.task.kind for t in gsm.tasks} == {"gsm8k"}
    mmlu = convert_rows(_rows(4), "mmlu")
    cost = lambda d: sorted(o.cost_usd for t in d.tasks for o in t.outcomes if o.arm == WEAK)  # noqa: E731
    assert all(g > m for g, m in zip(cost(gsm), cost(mmlu), strict=True))


def test_bad_correctness_values_are_rejected() -> None:
    rows = _rows(2)
    rows[1]["gpt4_1106_preview_correct"] = "maybe"
    with pytest.raises(DatasetError, match="row 2"):
        convert_rows(rows, "mmlu")
