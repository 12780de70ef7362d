"""Summaries of py-spy's collapsed stacks: which part of the worker the CPU samples fall in."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# Innermost match wins: a stack in asyncpg under the task processor counts as database driver.
PARTS: tuple[tuple[str, str], ...] = (
    ("embedding", "processors/embedders/"),
    ("database driver (asyncpg)", "asyncpg/"),
    ("kafka client (aiokafka)", "aiokafka/"),
    ("decode + schema validation", "processors/contracts/"),
    ("scheduling decision", "processors/scheduling/"),
    ("metrics", "prometheus_client/"),
    ("pipeline code", "processors/"),
    ("worker loop", "streams/"),
)
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


@dataclass(frozen=True, slots=True)
class ProfileSummary:
    samples: int
    by_part: dict[str, float]  # part -> share of samples
    top_self: list[tuple[str, float]]  # innermost frame -> share of samples


def _frames(stack: str) -> list[tuple[str, str]]:
    out = []
    for frame in stack.split(";"):
        m = _FRAME.match(frame.strip())
        if m:
            out.append((m["func"], m["file"]))
    return out


def part_of(frames: list[tuple[str, str]]) -> str:
    for _, file in reversed(frames):
        for part, marker in PARTS:
            if marker in file:
                return part
    return "event loop + other"


def summarize_collapsed(text: str, top: int = 12) -> ProfileSummary:
    """Parse `py-spy record --format raw` output ("frame;frame;... count" per line)."""
    parts: Counter[str] = Counter()
    leaves: Counter[str] = Counter()
    total = 0
    for line in text.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = _frames(stack)
        total += count
        parts[part_of(frames)] += count
        if frames:
            func, file = frames[-1]
            short = "/".join(file.split("/")[-2:])
            leaves[f"{func} ({short})"] += count
    if total == 0:
        return ProfileSummary(0, {}, [])
    return ProfileSummary(
        samples=total,
        by_part={k: round(v / total, 3) for k, v in parts.most_common()},
        top_self=[(k, round(v / total, 3)) for k, v in leaves.most_common(top)],
    )
