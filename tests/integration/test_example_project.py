"""The README's first command: the example project runs end to end."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_example_project_runs_end_to_end() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "example" / "demo.py")],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "run() returned 1" in output
    assert "the worker ran it: succeeded" in output
    assert "invalid params -> HTTP 422" in output
    assert '"status": "succeeded"' in output
    assert "Subject: Hello over HTTP" in output
    assert "Subject: Hello from the worker" in output
    assert "tasks_status" in output
    assert "/admin/django_generic_tasks/dashboard/" in output
