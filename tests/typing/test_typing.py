"""Type checkers see ``self.params`` as the concrete model, and catch misuse.

``mypy --strict`` must accept ``usage.py`` and report exactly the errors marked in
``fails.py``. Pyright must accept ``usage.py`` too (skipped when it is not installed).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
pytestmark = pytest.mark.slow  # runs type checkers in subprocesses


@cache
def mypy_output() -> str:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--no-error-summary",
            "--show-error-codes",
            str(HERE / "usage.py"),
            str(HERE / "fails.py"),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    return result.stdout


def errors_in(filename: str) -> list[tuple[int, str, str]]:
    pattern = re.compile(rf"^.*{re.escape(filename)}:(\d+): error: (.*)  \[([\w-]+)\]$")
    found = []
    for line in mypy_output().splitlines():
        match = pattern.match(line)
        if match:
            found.append((int(match[1]), match[3], match[2]))
    return found


def test_mypy_strict_accepts_the_usage_file_and_infers_params() -> None:
    assert errors_in("usage.py") == [], mypy_output()


def test_mypy_strict_reports_each_expected_error_in_the_misuse_file() -> None:
    expected = {
        (number, code)
        for number, line in enumerate((HERE / "fails.py").read_text().splitlines(), start=1)
        for code in re.findall(r"# expect: \[([\w-]+)\]", line)
    }
    assert len(expected) == 15
    got = {(number, code) for number, code, _ in errors_in("fails.py")}
    assert got == expected, mypy_output()


def test_mypy_names_the_concrete_model_in_a_misuse_message() -> None:
    messages = [message for _, code, message in errors_in("fails.py") if code == "attr-defined"]
    assert messages == ['"EmailParams" has no attribute "number"']


def test_pyright_accepts_the_usage_file() -> None:
    pyright = shutil.which("pyright", path=str(Path(sys.executable).parent))
    if pyright is None:
        pytest.skip("pyright is not installed (pip install pyright; it needs Node.js)")
    probe = subprocess.run(
        [pyright, "--version"], capture_output=True, text=True, timeout=600, check=False
    )
    if probe.returncode != 0:  # pyright's wrapper fetches Node.js and pyright on first use
        pytest.skip(f"pyright cannot start here: {(probe.stderr or probe.stdout).strip()[-300:]}")
    result = subprocess.run(
        [pyright, "--pythonpath", sys.executable, str(HERE / "usage.py")],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 errors" in result.stdout
