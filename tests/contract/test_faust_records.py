"""The faust Records for downstream apps (streams/downstream/records.py) match the published
JSON Schemas field for field and decode the golden examples without losing anything. Runs in
the faust virtualenv (tests/support/faust_check.py)."""

from __future__ import annotations

import json
import subprocess

from tests.support.faust_venv import ROOT, faust_python


def test_the_faust_records_are_the_published_schemas() -> None:
    done = subprocess.run(
        [str(faust_python()), "-m", "tests.support.faust_check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {
        "records": ["insights-snapshot", "message-duplicate", "schedule-snapshot", "task-schedule"],
        "problems": [],
    }
    assert done.returncode == 0
