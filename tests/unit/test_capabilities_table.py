"""The README's backends x capabilities table is generated from the capability flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from django_generic_tasks.backends import capabilities
from django_generic_tasks.backends.capabilities import (
    END_MARKER,
    START_MARKER,
    readme_table,
    render_table,
)
from django_generic_tasks.exceptions import MissingDependencyError

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def generated() -> str:
    try:
        return render_table()
    except MissingDependencyError as exc:
        pytest.skip(f"a backend's extra is missing, so its row cannot be generated: {exc}")


def test_readme_table_equals_the_generated_one() -> None:
    readme = README.read_text(encoding="utf-8")
    if START_MARKER not in readme:
        pytest.skip("README.md has no capabilities block yet")
    assert readme_table(readme) == generated(), (
        "README.md's capabilities table is stale: replace the block between the markers "
        "with the output of `python -m django_generic_tasks.backends.capabilities`."
    )


def test_table_has_one_row_per_backend_and_every_column() -> None:
    lines = generated().splitlines()
    assert len(lines) == 2 + len(capabilities.BACKENDS)
    assert all(line.count("|") == len(capabilities.COLUMNS) + 2 for line in lines)
    assert "| `CeleryBackend` | ✅ |" in generated()


def test_flags_that_depend_on_configuration_show_their_note() -> None:
    from django_generic_tasks.backends.celery import CeleryBackend

    assert capabilities.cell(CeleryBackend, "supports_results") == (
        "with a Celery `result_backend`"
    )
    assert capabilities.cell(CeleryBackend, "supports_key") == "—"


def test_readme_without_markers_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="capabilities:start"):
        readme_table("# no table here\n")


def test_readme_table_is_read_between_the_markers() -> None:
    text = f"intro\n{START_MARKER}\n| a |\n{END_MARKER}\nrest\n"
    assert readme_table(text) == "| a |\n"


def test_declared_flags_are_the_imported_classes_flags() -> None:
    try:
        imported = render_table(imported=True)
    except MissingDependencyError as exc:
        pytest.skip(f"a backend's extra is missing, so its class cannot be imported: {exc}")
    assert render_table() == imported


BLOCKER = """
import sys

class BlockExtras:
    # As in a virtualenv with only the `docs` extra: Celery, kombu and Google Cloud absent.
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"celery", "kombu"} or name.startswith(
            ("google.cloud", "google.api_core", "google.auth")
        ):
            raise ImportError(f"{name} is not installed (blocked by the test)")
        return None

sys.meta_path.insert(0, BlockExtras())
"""


def run_without_extras(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter where the optional extras cannot be imported."""
    (tmp_path / "sitecustomize.py").write_text(BLOCKER, encoding="utf-8")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT / "src"), str(ROOT)]),
    }
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_capability_table_prints_without_the_optional_extras(tmp_path: Path) -> None:
    code = (
        "import importlib, runpy\n"
        "for extra in ('celery', 'google.cloud.tasks_v2'):\n"
        "    try:\n"
        "        importlib.import_module(extra)\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit(f'{extra} was importable: the blocker failed')\n"
        "runpy.run_module('django_generic_tasks.backends.capabilities', run_name='__main__')\n"
    )
    result = run_without_extras(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert readme_table(result.stdout) == readme_table(README.read_text(encoding="utf-8"))


def test_docs_hooks_render_the_generated_pages_without_the_optional_extras(
    tmp_path: Path,
) -> None:
    code = (
        "import sys; sys.path.insert(0, 'docs')\n"
        "import hooks\n"
        "hooks.on_config(None)\n"
        "for page in ('reference/capabilities.md', 'reference/check-ids.md'):\n"
        "    text = open('docs/' + page, encoding='utf-8').read()\n"
        "    out = hooks.on_page_markdown(text, None)\n"
        "    assert '<!-- generated:' not in out, page\n"
        "    print(out)\n"
    )
    result = run_without_extras(code, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| `CeleryBackend` |" in result.stdout
    assert "django_generic_tasks.W101" in result.stdout
