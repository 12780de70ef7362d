"""Operations tools that `make tools` fetches into .tasksage/tools (Prometheus, promtool, helm).

A test that needs one and does not find it is skipped with the command that fetches it, except
under CI=true, where a missing tool fails the run: CI's `make test` fetches them first, so a
missing one there is a broken install step, not a machine without the tool.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS = REPO_ROOT / ".tasksage" / "tools"
PROMETHEUS = TOOLS / "prometheus" / "usr" / "bin" / "prometheus"
PROMTOOL = TOOLS / "prometheus" / "usr" / "bin" / "promtool"
# The pinned versions live in the Makefile alone.
_MAKEFILE = (REPO_ROOT / "Makefile").read_text()


def _pinned(name: str) -> str:
    found = re.search(rf"^{name}\s*:=\s*(\S+)", _MAKEFILE, re.MULTILINE)
    assert found, f"Makefile has no {name}"
    return found.group(1)


HELM = TOOLS / f"helm-{_pinned('HELM_VERSION')}" / "helm"


def require(tool: Path) -> Path:
    """The tool's path; skips (fails under CI) when it has not been fetched."""
    if tool.exists():
        return tool
    message = f"{tool.relative_to(REPO_ROOT)} is missing: run `make tools` to fetch it"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message)
    pytest.skip(message)
