"""The docs' Python examples are formatted as the code is (``ruff format --check``)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.docs_examples import ROOT, blocks, pages


def test_docs_python_blocks_pass_ruff_format_check(tmp_path: Path) -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (the `dev` extra)")
    files: dict[str, str] = {}
    for page in pages():
        for block in blocks(page):
            if block.language not in {"python", "py"}:
                continue
            name = f"{block.where.replace('/', '__').replace(':', '_L').replace('.', '_')}.py"
            (tmp_path / name).write_text(block.code.rstrip("\n") + "\n", encoding="utf-8")
            files[name] = block.where
    assert files, "no Python block found in the docs"
    result = subprocess.run(
        [
            ruff,
            "format",
            "--check",
            "--output-format",
            "concise",
            "--config",
            str(ROOT / "pyproject.toml"),
            ".",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    failing = sorted(
        files[line.split(":")[0]]
        for line in result.stdout.splitlines()
        if line.split(":")[0] in files
    )
    assert result.returncode == 0, (
        f"ruff format would change these docs blocks: {', '.join(failing)}\n{result.stderr}"
    )
