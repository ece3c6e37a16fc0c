"""MkDocs hooks: tables generated from the code at build time, and the changelog page.

``<!-- generated:capabilities -->`` becomes the capability table
(``django_generic_tasks.backends.capabilities.render_table``) and ``<!-- generated:check-ids -->``
the table of system check ids (``django_generic_tasks.check_ids.CheckId``), so the reference
can never drift from the code. ``changelog.md`` is the repository's ``CHANGELOG.md``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PARTS = {
    "0": "core settings",
    "1": "DatabaseBackend and the worker",
    "2": "CloudTasksBackend",
    "3": "the HTTP API and its authentication",
    "4": "the Celery and django.tasks bridges",
    "5": "periodic tasks",
}


def _setup() -> None:
    sys.path[:0] = [str(ROOT / "src"), str(ROOT)]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()


def check_ids_table() -> str:
    """Markdown table: every check id, its level, what it reports, the part of the package."""
    from django_generic_tasks.check_ids import PREFIX, CheckId

    rows = ["| id | level | reports | part |", "| --- | --- | --- | --- |"]
    for check in sorted(CheckId, key=lambda c: c.value[len(PREFIX) + 1 :]):
        code = check.value[len(PREFIX) :]
        level = "error" if code.startswith("E") else "warning"
        what = check.name.lower().replace("_", " ")
        rows.append(f"| `{check.value}` | {level} | {what} | {PARTS[code[1]]} |")
    return "\n".join(rows) + "\n"


def on_config(config: Any) -> Any:
    """Make Django importable for the generated tables and the API reference."""
    _setup()
    return config


def on_page_markdown(markdown: str, page: Any, **kwargs: Any) -> str:
    """Replace the generation markers with the tables made from the code."""
    if "<!-- generated:capabilities -->" in markdown:
        from django_generic_tasks.backends.capabilities import render_table

        markdown = markdown.replace("<!-- generated:capabilities -->", render_table())
    if "<!-- generated:check-ids -->" in markdown:
        markdown = markdown.replace("<!-- generated:check-ids -->", check_ids_table())
    if "<!-- generated:changelog -->" in markdown:
        changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
        markdown = markdown.replace("<!-- generated:changelog -->", changelog)
    return markdown
