"""The task registry: registration at class creation, duplicates, lookup, autodiscovery."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pydantic import BaseModel

import django_generic_tasks as tasks
from django_generic_tasks import DuplicateTaskNameError, UnknownTaskError, get_task_class
from django_generic_tasks.core.registry import TaskRegistry, registry
from tests.testapp.tasks import AddTask, AsyncEchoTask, FlakyTask
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")
ROOT = Path(__file__).resolve().parents[2]


class P(BaseModel):
    x: int = 0


def test_defining_a_concrete_task_registers_it_by_name() -> None:
    class Registered(tasks.Task[P]):
        name = "tests.registered"

    assert "tests.registered" in registry
    assert get_task_class("tests.registered") is Registered


def test_duplicate_name_raises_naming_both_dotted_paths() -> None:
    with pytest.raises(DuplicateTaskNameError) as info:

        class Impostor(tasks.Task[P]):
            name = "tests.add"

    message = str(info.value)
    assert "'tests.add'" in message
    assert "tests.testapp.tasks.AddTask" in message
    assert f"{__name__}.test_duplicate_name_raises_naming_both_dotted_paths.<locals>.Impostor" in (
        message
    )
    assert registry.get("tests.add") is AddTask


def test_redefining_the_same_class_replaces_it_like_a_module_reload() -> None:
    def define() -> type[tasks.Task[P]]:
        class Reloaded(tasks.Task[P]):
            name = "tests.reloaded"

        return Reloaded

    first = define()
    second = define()
    assert first is not second
    assert registry.get("tests.reloaded") is second


def test_reloading_a_tasks_module_keeps_one_registration_per_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib

    (tmp_path / "reload_me_tasks.py").write_text(
        textwrap.dedent(
            """
            from pydantic import BaseModel
            import django_generic_tasks as tasks

            class Params(BaseModel):
                n: int

            class ReloadMe(tasks.Task[Params]):
                def run(self):
                    return self.params.n
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("reload_me_tasks")
    try:
        count, old = len(registry), module.ReloadMe
        reloaded = importlib.reload(module)
        assert len(registry) == count
        assert registry.get("reload_me_tasks.ReloadMe") is reloaded.ReloadMe
        assert reloaded.ReloadMe is not old
    finally:
        sys.modules.pop("reload_me_tasks", None)


def test_lookup_of_an_unknown_name_raises_with_a_hint() -> None:
    with pytest.raises(UnknownTaskError, match=r"No task is registered under the name 'nope'.*"):
        get_task_class("nope")
    with pytest.raises(LookupError):
        registry.get("nope")


def test_iteration_lists_registered_classes_and_names_are_sorted() -> None:
    assert {AddTask, FlakyTask, AsyncEchoTask} <= set(registry)
    names = registry.names()
    assert names == sorted(names)
    assert {"tests.add", "tests.flaky", "tests.async_echo"} <= set(names)
    assert len(registry) == len(names)


def test_iteration_is_safe_while_tasks_register() -> None:
    seen = []
    for cls in registry:
        seen.append(cls)
        if len(seen) == 1:

            class Late(tasks.Task[P]):
                pass

    assert Late not in seen
    assert Late in list(registry)


def test_unregister_forgets_a_name_and_ignores_unknown_ones() -> None:
    class Temporary(tasks.Task[P]):
        name = "tests.temporary"

    registry.unregister("tests.temporary")
    registry.unregister("tests.temporary")
    assert "tests.temporary" not in registry


def test_a_fresh_registry_is_empty() -> None:
    fresh = TaskRegistry()
    assert len(fresh) == 0
    assert list(fresh) == []
    assert 42 not in fresh


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean,
        timeout=60,
        check=False,
    )


def test_importing_the_package_and_defining_a_task_needs_no_settings() -> None:
    result = _python(
        """
        from pydantic import BaseModel
        import django_generic_tasks as tasks
        import django_generic_tasks.testing
        from django.conf import settings

        class Params(BaseModel):
            n: int

        class Double(tasks.Task[Params]):
            def run(self):
                return self.params.n * 2

        assert not settings.configured
        assert tasks.registry.get("__main__.Double") is Double
        print(Double({"n": 21}).run())
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"


def test_installed_apps_tasks_modules_are_autodiscovered_when_apps_are_ready() -> None:
    result = _python(
        """
        import sys
        import django
        from django_generic_tasks import registry

        assert "tests.testapp.tasks" not in sys.modules
        assert "tests.add" not in registry
        django.setup()
        assert "tests.testapp.tasks" in sys.modules
        print(" ".join(n for n in registry.names() if n.startswith("tests.")))
        """,
        DJANGO_SETTINGS_MODULE="tests.settings",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["tests.add", "tests.async_echo", "tests.flaky"]


def test_registrations_after_urls_were_built_go_to_the_listeners_once() -> None:
    own = TaskRegistry()
    heard: list[str] = []

    def listener(task_class: type) -> None:
        heard.append(task_class.__name__)

    own.on_late_registration(listener)
    own.on_late_registration(listener)  # added twice: still called once
    own.register(AddTask)  # before any router built its URLs: nobody is told
    own.urls_built = True
    own.register(FlakyTask)
    own.register(FlakyTask)  # the same class again (a reload) is not new
    assert heard == ["FlakyTask"]
