"""The README's backends x capabilities table, generated from the backends' declarations.

Every capability is declared once, with its default, on ``BaseBackend`` (``backends.base``);
each backend overrides what it does in its class body. ``render_table()`` shows the columns
below for each backend; a flag that is a property (it depends on configuration) is shown with
the backend's ``capability_notes`` for it. A test keeps the README's copy, between
``<!-- capabilities:start -->`` and ``<!-- capabilities:end -->``, equal to this output.

The overrides are read from the class bodies in the backends' source (``declared_class()``),
not from the imported classes, over ``BaseBackend``'s defaults: the table, the docs site and
``python -m django_generic_tasks.backends.capabilities`` need none of the optional extras
(Celery, Google Cloud). So each flag is set in a backend's class body as a literal, or as a
``@property`` when it depends on configuration.
"""

from __future__ import annotations

import ast
import inspect
from importlib import import_module
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from .base import BaseBackend

START_MARKER = "<!-- capabilities:start -->"
END_MARKER = "<!-- capabilities:end -->"

BACKENDS = (
    "ImmediateBackend",
    "ThreadingBackend",
    "DatabaseBackend",
    "CloudTasksBackend",
    "CeleryBackend",
    "DjangoTasksBackend",
    "DatabaseTaskBackend",
    "InMemoryBackend",
)
"""Backends in the table, in the order shown (``DatabaseTaskBackend`` is Django's kind of
backend, for ``TASKS``: its row says what Django ``@task`` runs get on it)."""

COLUMNS = (
    ("delay", "supports_defer"),
    ("priority", "supports_priority"),
    ("key (dedup)", "supports_key"),
    ("results", "supports_results"),
    ("retries", "supports_retries"),
    ("progress stored", "supports_progress"),
    ("cancel running", "supports_cancel"),
    ("workflows", "supports_workflows"),
    ("resumable steps", "supports_continuations"),
    ("on-commit", "enqueues_in_transaction"),
    ("concurrency limit", "concurrency_limits"),
    ("rate limit", "rate_limits"),
    ("pause queues", "supports_pause"),
    ("crash safety", "crash_safe"),
    ("needs a server", "needs_server"),
)
"""(column heading, capability declared on ``BaseBackend``)."""

YES, NO, NOT_APPLICABLE = "✅", "—", "n/a"
_HOW_LIMITS = {"store": "✅ across workers", "process": "✅ in-process", "": "refused"}
"""How a backend honours a limit (``concurrency_limits``, ``rate_limits``), in the table."""


CAPABILITY_FREE_MIXINS = frozenset({"InProcessWorkflowOperations"})
"""Base classes of backends that declare no capability (operations only): the table skips them."""

DECLARED = frozenset({attribute for _, attribute in COLUMNS} | {"capability_notes"})
"""The class attributes the table reads."""


def backend_class(name: str) -> type[BaseBackend]:
    """Import ``django_generic_tasks.backends.<name>`` (``MissingDependencyError`` if absent)."""
    return getattr(import_module("django_generic_tasks.backends"), name)  # type: ignore[no-any-return]


def declared_class(name: str) -> type[BaseBackend]:
    """A stand-in for backend class ``name`` with its declared capabilities, read from its
    module's source without importing it (so without its optional extra)."""
    from . import _LAZY

    spec = find_spec(_LAZY[name], "django_generic_tasks.backends")
    if spec is None or spec.origin is None:
        raise LookupError(f"No source for backend {name!r}.")
    tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
    classes = {node.name: node for node in tree.body if isinstance(node, ast.ClassDef)}
    return _stand_in(classes, name)


def _stand_in(classes: dict[str, ast.ClassDef], name: str) -> type[BaseBackend]:
    node = classes[name]
    bases: list[type] = []
    for base in node.bases:
        base_name = ast.unparse(base)
        if base_name in classes:
            bases.append(_stand_in(classes, base_name))
        elif base_name in {"BaseBackend", "BaseTaskBackend"}:  # ours, or django.tasks'
            bases.append(BaseBackend)
        elif base_name in CAPABILITY_FREE_MIXINS:
            continue
        else:
            raise TypeError(f"{name}: the capability table cannot read base class {base_name}.")
    attributes: dict[str, Any] = {}
    for statement in node.body:
        if isinstance(statement, ast.FunctionDef):
            decorators = {ast.unparse(d) for d in statement.decorator_list}
            if statement.name in DECLARED and "property" in decorators:
                attributes[statement.name] = property(lambda self: None)
            continue
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in DECLARED:
            try:
                attributes[target.id] = ast.literal_eval(value)
            except ValueError:
                raise TypeError(
                    f"{name}.{target.id} must be a literal (or a @property) for the capability "
                    "table."
                ) from None
    return type(name, tuple(bases), attributes)


def cell(cls: type[BaseBackend], attribute: str) -> str:
    """The table cell for ``attribute`` of backend class ``cls``."""
    notes = cls.capability_notes
    value = inspect.getattr_static(cls, attribute)  # declared on BaseBackend at least
    if isinstance(value, property) or (value is None and attribute in notes):
        return notes.get(attribute, "depends")
    if attribute == "enqueues_in_transaction":
        text = "in the transaction" if value else "after commit"
    elif attribute in ("concurrency_limits", "rate_limits"):
        text = _HOW_LIMITS[value]
    elif attribute == "needs_server":
        text = str(value) if value else "no"
    elif value is None:
        text = NOT_APPLICABLE
    else:
        text = YES if value else NO
    note = notes.get(attribute)
    return f"{text} ({note})" if note else text


def render_table(names: tuple[str, ...] = BACKENDS, *, imported: bool = False) -> str:
    """The Markdown table of backends (rows) x capabilities (columns), from the declarations
    (``imported``: from the imported classes, which needs every extra)."""
    load = backend_class if imported else declared_class
    header = "| backend | " + " | ".join(title for title, _ in COLUMNS) + " |"
    rule = "| --- |" + " --- |" * len(COLUMNS)
    rows = []
    for name in names:
        cls = load(name)
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
