"""The README's backends x capabilities table, generated from the backends' capability flags.

``render_table()`` reads each backend class's flags (``supports_*``,
``enqueues_in_transaction``) plus two descriptive attributes, ``crash_safe`` and
``needs_server``; a flag that is a property (it depends on configuration) is shown with the
backend's ``capability_notes`` for it. A test keeps the README's copy, between
``<!-- capabilities:start -->`` and ``<!-- capabilities:end -->``, equal to this output.

Print it with ``python -m django_generic_tasks.backends.capabilities``.
"""

from __future__ import annotations

import inspect
from importlib import import_module
from typing import Any

START_MARKER = "<!-- capabilities:start -->"
END_MARKER = "<!-- capabilities:end -->"

BACKENDS = (
    "ImmediateBackend",
    "ThreadingBackend",
    "DatabaseBackend",
    "CloudTasksBackend",
    "CeleryBackend",
    "DjangoTasksBackend",
    "InMemoryBackend",
)
"""Backends in the table, in the order shown."""

COLUMNS = (
    ("delay", "supports_defer"),
    ("priority", "supports_priority"),
    ("key (dedup)", "supports_key"),
    ("results", "supports_results"),
    ("retries", "supports_retries"),
    ("progress stored", "supports_progress"),
    ("cancel running", "supports_cancel"),
    ("on-commit", "enqueues_in_transaction"),
    ("crash safety", "crash_safe"),
    ("needs a server", "needs_server"),
)
"""(column heading, attribute read from the backend class)."""

DESCRIPTIVE_DEFAULTS: dict[str, dict[str, Any]] = {
    # For backends that do not (yet) declare the two descriptive attributes themselves.
    "ImmediateBackend": {"crash_safe": None, "needs_server": ""},
    "ThreadingBackend": {"crash_safe": False, "needs_server": ""},
    "InMemoryBackend": {"crash_safe": None, "needs_server": ""},
    "DatabaseBackend": {"crash_safe": True, "needs_server": "your database, `tasks_worker`"},
    "CloudTasksBackend": {"crash_safe": True, "needs_server": "Google Cloud Tasks"},
}

YES, NO, NOT_APPLICABLE = "✅", "—", "n/a"


def backend_class(name: str) -> type:
    """Import ``django_generic_tasks.backends.<name>`` (``MissingDependencyError`` if absent)."""
    return getattr(import_module("django_generic_tasks.backends"), name)  # type: ignore[no-any-return]


def cell(cls: type, attribute: str) -> str:
    """The table cell for ``attribute`` of backend class ``cls``."""
    notes: dict[str, str] = getattr(cls, "capability_notes", {})
    try:
        value = inspect.getattr_static(cls, attribute)
    except AttributeError:
        value = DESCRIPTIVE_DEFAULTS.get(cls.__name__, {}).get(attribute)
    if isinstance(value, property) or (value is None and attribute in notes):
        return notes.get(attribute, "depends")
    if attribute == "enqueues_in_transaction":
        text = "in the transaction" if value else "after commit"
    elif attribute == "needs_server":
        text = str(value) if value else "no"
    elif value is None:
        text = NOT_APPLICABLE
    else:
        text = YES if value else NO
    note = notes.get(attribute)
    return f"{text} ({note})" if note else text


def render_table(names: tuple[str, ...] = BACKENDS) -> str:
    """The Markdown table of backends (rows) x capabilities (columns)."""
    header = "| backend | " + " | ".join(title for title, _ in COLUMNS) + " |"
    rule = "| --- |" + " --- |" * len(COLUMNS)
    rows = []
    for name in names:
        cls = backend_class(name)
        cells = " | ".join(cell(cls, attribute) for _, attribute in COLUMNS)
        rows.append(f"| `{name}` | {cells} |")
    return "\n".join([header, rule, *rows]) + "\n"


def readme_table(readme: str) -> str:
    """The text between the capability markers of ``readme`` (``ValueError`` if missing)."""
    start, end = readme.find(START_MARKER), readme.find(END_MARKER)
    if start < 0 or end < start:
        raise ValueError(f"README has no {START_MARKER} ... {END_MARKER} block.")
    return readme[start + len(START_MARKER) : end].strip("\n") + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(START_MARKER)
    print(render_table(), end="")
    print(END_MARKER)
