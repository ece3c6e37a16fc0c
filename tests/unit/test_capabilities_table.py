"""The README's backends x capabilities table is generated from the capability flags."""

from __future__ import annotations

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

README = Path(__file__).resolve().parents[2] / "README.md"


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
