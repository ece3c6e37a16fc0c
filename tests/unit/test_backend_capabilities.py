"""Backends declare what they can do on ``BaseBackend`` (issue 20, item 3): callers ask the
backend object, no code outside a backend's own module names it as a string, and the worker
and the push endpoint take their backend's name and operations from it."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from typing import Any

import pytest

import django_generic_tasks
import django_generic_tasks as tasks
from django_generic_tasks.backends import DatabaseBackend
from django_generic_tasks.backends.base import BaseBackend
from django_generic_tasks.backends.capabilities import BACKENDS, COLUMNS, declared_class
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.handles import TaskHandle

ROOT = Path(django_generic_tasks.__file__).resolve().parent

OWN_MODULES = {
    # A backend may name itself in its own module(s); the capability table lists them all.
    "ImmediateBackend": {"backends/immediate.py"},
    "ThreadingBackend": {"backends/threads.py"},
    "InMemoryBackend": {"backends/memory.py"},
    "DatabaseBackend": {"backends/database.py"},
    "CloudTasksBackend": {"backends/cloudtasks/__init__.py"},
    "CeleryBackend": {"backends/celery.py", "backends/celery_tasks.py"},
    "DjangoTasksBackend": {"backends/django_tasks.py"},
}
DECLARATION = {"backends/__init__.py", "backends/capabilities.py"}


def _capabilities() -> set[str]:
    """Every flag and operation ``BaseBackend`` declares beyond ``object``."""
    return {name for name in vars(BaseBackend) if not name.startswith("_")}


def _sources() -> list[tuple[str, ast.Module]]:
    return [
        (path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8")))
        for path in sorted(ROOT.rglob("*.py"))
    ]


def test_no_backend_class_is_named_as_a_string_outside_its_own_module() -> None:
    found = []
    for module, tree in _sources():
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Constant) and node.value in OWN_MODULES):
                continue
            if module in OWN_MODULES[node.value] | DECLARATION:
                continue
            found.append(f"{module}:{node.lineno} {node.value!r}")
    assert found == []


GENERIC_NAMES = {"name", "requeue", "record", "check", "close", "queues"}
"""Operations whose names other objects use too (a Celery queue's ``name``...)."""


def test_no_capability_is_looked_up_with_getattr_and_a_default() -> None:
    specific = _capabilities() - GENERIC_NAMES
    found = []
    for module, tree in _sources():
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in {"getattr", "hasattr"}
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                continue
            on_a_backend = ast.unparse(node.args[0]).lower().endswith("backend")
            if node.args[1].value in specific or on_a_backend:
                found.append(f"{module}:{node.lineno} {ast.unparse(node)}")
    assert found == []


def test_every_column_of_the_table_is_a_capability_declared_on_the_base() -> None:
    assert {attribute for _, attribute in COLUMNS} <= _capabilities()


@pytest.mark.parametrize("name", BACKENDS)
def test_each_backend_sets_only_capabilities_the_base_declares(name: str) -> None:
    stand_in = declared_class(name)
    assert issubclass(stand_in, BaseBackend)
    for klass in stand_in.__mro__[: stand_in.__mro__.index(BaseBackend)]:
        assert set(vars(klass)) - {"__module__", "__doc__", "__qualname__", "name"} <= (
            _capabilities() | {"__dict__", "__weakref__", "__abstractmethods__", "_abc_impl"}
        ), klass


def test_a_backend_that_declares_nothing_has_the_documented_defaults() -> None:
    class Minimal(BaseBackend):
        def enqueue(self, request: EnqueueRequest) -> TaskHandle[Any]:
            return self.handle_for(request)

    backend = Minimal()
    assert backend.name == "Minimal"
    assert not backend.supports_cancel
    assert not backend.supports_progress
    assert backend.finish_notices() is None
    assert backend.progress_sink() is None
    assert backend.run_params("x") is None
    assert backend.run_database is None
    assert dict(backend.queues) == {}
    assert backend.keeps_nul_characters
    assert not backend.joins_timed_out_attempts
    with pytest.raises(tasks.UnsupportedOptionError, match="Minimal cannot cancel runs"):
        backend.cancel_run("x")


def test_every_public_capability_has_a_docstring_in_the_declaration() -> None:
    source = inspect.getsource(BaseBackend)
    tree = ast.parse(source).body[0]
    assert isinstance(tree, ast.ClassDef)
    documented = set()
    body = tree.body
    for index, statement in enumerate(body):
        if isinstance(statement, ast.FunctionDef) and ast.get_docstring(statement):
            documented.add(statement.name)
        elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
            following = body[index + 1] if index + 1 < len(body) else None
            if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
                documented.add(statement.target.id)
    assert _capabilities() - {"_abc_impl"} <= documented


class RenamedStore(DatabaseBackend):
    """A store-backed backend under its own name: its worker runs its runs under that name."""

    name = "renamed-store"


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_its_backends_runs_under_the_backends_own_name() -> None:
    from django_generic_tasks.signals import task_started
    from django_generic_tasks.worker import Worker, WorkerOptions
    from tests.testapp.tasks import AddTask

    seen: list[str] = []

    def receiver(task: Any, **_: Any) -> None:
        seen.append(task.context.backend)

    backend = RenamedStore()
    AddTask({"a": 1, "b": 2}).start(backend=backend, on_commit=False)
    task_started.connect(receiver, weak=False)
    try:
        Worker(WorkerOptions(once=True, interval=0.02, concurrency=1), backend=backend).run(
            install_signals=False
        )
    finally:
        task_started.disconnect(receiver)
    assert seen == ["renamed-store"]


def test_database_task_backend_on_a_django_without_django_tasks_says_to_upgrade() -> None:
    import subprocess
    import sys

    code = (  # Django 6 with django.tasks hidden, and the backend's module not imported yet
        "import importlib, sys, django\n"
        "django.setup()\n"
        "hidden = ('django.tasks', 'django.utils.json')\n"
        "for name in [n for n in sys.modules if n.startswith(hidden)]:\n"
        "    sys.modules[name] = None\n"
        "sys.modules.pop('django_generic_tasks.backends.dbtasks.backend', None)\n"
        "from django_generic_tasks.exceptions import MissingDependencyError\n"
        "try:\n"
        "    importlib.import_module('django_generic_tasks.backends.dbtasks.backend')\n"
        "except MissingDependencyError as exc:\n"
        "    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Django 6.0" in result.stdout
    assert "pip install 'django>=6.0'" in result.stdout
