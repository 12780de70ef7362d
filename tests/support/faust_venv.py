"""The faust virtualenv that `make faust` builds: its python, or a skip (a failure under CI=true,
where `make test` builds it first, so a missing one is a broken set-up, not a choice)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAUST_PYTHON = ROOT / ".tasksage" / "faust-venv" / "bin" / "python"


def faust_python() -> Path:
    if not FAUST_PYTHON.exists():
        message = f"no faust virtualenv at {FAUST_PYTHON.parent.parent}: run `make faust`"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return FAUST_PYTHON
