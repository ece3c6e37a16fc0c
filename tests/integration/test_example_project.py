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
    # What tasks know of themselves: a model reference, a typed result, progress.
    assert 'params JSON: {"user":' in output
    assert "Subject: Welcome, ada" in output
    assert "a deleted user: the run ended discarded, auth.User with pk" in output
    assert "handle.wait(timeout=60) returned a Quote: " in output
    assert "total 30.60 EUR (VAT 5.10)" in output
    assert "handle.refresh().progress: " in output
    assert "the admin's run list (" in output
    assert "the admin's run page (" in output
    assert "no progress bar" not in output
    assert "finished: succeeded (indexed batch 5 of 5); handle.wait() returned 5" in output
    assert "tasks_status" in output
    assert "/admin/django_generic_tasks/dashboard/" in output
