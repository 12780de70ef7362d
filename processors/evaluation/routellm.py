"""Converters for the RouteLLM per-prompt correctness tables (../shared/data/routellm/).

Data: lm-sys/RouteLLM (commit 0b64fdafe049e596a3f5657c219329f24af24198), Apache-2.0; the
attribution travels in the dataset header and so into every report made from it.

- One prompt = one task; kind = the MMLU subject (GSM8K has none: kind "gsm8k").
- Two arms: agent "routellm", models "mixtral-8x7b-instruct" (weak) and "gpt-4-1106-preview" (strong);
  `success` is the table's 0/1 correctness.
- Cost per call = tokens x the RouteLLM paper's price per million tokens (GPT-4 $24.7, Mixtral $0.24).
  Tokens = the prompt's estimate (processors.embedders.batching.estimate_tokens, ~4 characters per
  token) plus an assumed completion: 1 token for MMLU (the answer letter) and 200 for GSM8K (a
  worked solution). The tables record no lengths, so only the ~103:1 price ratio and the prompt
  lengths shape the costs; no durations are recorded, so duration metrics are n/a.
- Time order: the CSV is sorted by subject, which no real stream is; tasks are shuffled with
  random.Random(seed).shuffle (default seed 2024) so every run replays the same order.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Literal

from processors.contracts import TaskCreated
from processors.embedders.batching import estimate_tokens
from processors.evaluation.dataset import (
    EPOCH,
    ArmSpec,
    Dataset,
    DatasetError,
    DatasetHeader,
    DatasetTask,
    Outcome,
)
from processors.scheduling.types import Arm, TierOption

Benchmark = Literal["mmlu", "gsm8k"]
DEFAULT_SEED = 2024
AGENT = "routellm"
WEAK = Arm(AGENT, "mixtral-8x7b-instruct")
STRONG = Arm(AGENT, "gpt-4-1106-preview")
PRICE_PER_MILLION_USD = {WEAK: 0.24, STRONG: 24.7}
COMPLETION_TOKENS: dict[str, int] = {"mmlu": 1, "gsm8k": 200}
COLUMNS = {WEAK: "mixtral_8x7b_instruct_correct", STRONG: "gpt4_1106_preview_correct"}
ATTRIBUTION = (
    "Per-prompt correctness from lm-sys/RouteLLM (commit 0b64fdafe049e596a3f5657c219329f24af24198, "
    "routellm/evals/mmlu/responses/*.csv and routellm/evals/gsm8k/gsm8k_responses.csv), Apache-2.0."
)
_TYPICAL_TOKENS = 120  # list price basis for the header (per-outcome costs are exact)


def call_cost_usd(arm: Arm, prompt: str, benchmark: Benchmark) -> float:
    tokens = estimate_tokens(prompt) + COMPLETION_TOKENS[benchmark]
    return tokens * PRICE_PER_MILLION_USD[arm] / 1_000_000


def _correct(value: str, column: str, number: int) -> bool:
    if value.strip() not in {"0", "1", "0.0", "1.0", "True", "False"}:
        raise DatasetError(f"row {number}: {column} must be 0 or 1, got {value!r}")
    return value.strip() in {"1", "1.0", "True"}


def convert_rows(
    rows: Iterable[Mapping[str, str]], benchmark: Benchmark, seed: int = DEFAULT_SEED
) -> Dataset:
    """Rows of the correctness CSV (as csv.DictReader yields them) -> a shuffled two-arm dataset."""
    items: list[tuple[int, str, str, tuple[bool, ...]]] = []
    for number, row in enumerate(rows, start=1):
        prompt = (row.get("prompt") or "").strip()
        if not prompt:
            raise DatasetError(f"row {number}: empty prompt")
        kind = (row.get("subject") or "").strip() if benchmark == "mmlu" else "gsm8k"
        if not kind:
            raise DatasetError(f"row {number}: MMLU rows need a subject")
        flags = tuple(_correct(row.get(c, ""), c, number) for c in COLUMNS.values())
        items.append((number, kind, prompt, flags))
    random.Random(seed).shuffle(items)
    tasks = []
    for number, kind, prompt, flags in items:
        task = TaskCreated(
            event_id=f"eval-task:{benchmark}-{number:05d}",
            occurred_at=EPOCH,
            task_id=f"{benchmark}-{number:05d}",
            description=prompt,
            kind=kind,
        )
        outcomes = tuple(
            Outcome(arm, flag, None, round(call_cost_usd(arm, prompt, benchmark), 9))
            for arm, flag in zip(COLUMNS, flags, strict=True)
        )
        tasks.append(DatasetTask(task, outcomes))
    header = DatasetHeader(
        name=f"routellm-{benchmark}",
        description=f"RouteLLM {benchmark.upper()}: Mixtral-8x7B-Instruct vs GPT-4-1106-preview correctness",
        source="../shared/data/routellm (copied from lm-sys/RouteLLM)",
        attribution=ATTRIBUTION,
        arms=(
            ArmSpec(WEAK, _list_price(WEAK, benchmark), None, "Mixtral-8x7B"),
            ArmSpec(STRONG, _list_price(STRONG, benchmark), None, "GPT-4"),
        ),
        # Cold start: the cheap model first; no prior_success, so the data alone sets the rates.
        tiers=(
            TierOption("*", 1, WEAK, _list_price(WEAK, benchmark)),
            TierOption("*", 2, STRONG, _list_price(STRONG, benchmark)),
        ),
        notes=(
            f"time order: random.Random({seed}).shuffle of the CSV rows",
            "cost_usd per call: (estimated prompt tokens + "
            f"{COMPLETION_TOKENS[benchmark]} completion tokens) x $0.24 (Mixtral) or $24.7 (GPT-4) "
            "per million tokens, the prices assumed by the RouteLLM paper",
            "no per-prompt durations are recorded",
        ),
    )
    return Dataset(header, tuple(tasks))


def _list_price(arm: Arm, benchmark: Benchmark) -> float:
    tokens = _TYPICAL_TOKENS + COMPLETION_TOKENS[benchmark]
    return round(tokens * PRICE_PER_MILLION_USD[arm] / 1_000_000, 9)


def convert_file(path: Path, benchmark: Benchmark, seed: int = DEFAULT_SEED) -> Dataset:
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return convert_rows(csv.DictReader(handle), benchmark, seed)
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def guess_benchmark(path: Path) -> Benchmark:
    name = path.name.lower()
    if "mmlu" in name:
        return "mmlu"
    if "gsm8k" in name:
        return "gsm8k"
    raise DatasetError(f"cannot tell the benchmark from {path.name}; pass --benchmark mmlu|gsm8k")
