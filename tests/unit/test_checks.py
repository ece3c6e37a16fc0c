"""System checks: ``manage.py check`` reports bad TASKS_* settings as errors with hints."""

from __future__ import annotations

from io import StringIO
from typing import Any

import pytest
from django.core.checks import CheckMessage, Error, Tags, Warning, run_checks
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from django_generic_tasks import conf
from django_generic_tasks.backends import ThreadingBackend
from django_generic_tasks.backends.base import BaseBackend


def task_errors() -> list[CheckMessage]:
    """This library's configuration errors (its other checks may add warnings)."""
    return [
        m
        for m in run_checks(tags=[Tags.compatibility])
        if str(m.id).startswith("django_generic_tasks.") and m.is_serious()
    ]


class Grumpy(BaseBackend):
    def enqueue(self, request: Any) -> Any:
        raise AssertionError("not started in these tests")

    def check(self) -> list[CheckMessage]:
        return [Warning("grumpy backend", hint="cheer up", id="grumpy.W001")]


def test_default_configuration_passes_the_checks() -> None:
    assert task_errors() == []
    out = StringIO()
    call_command("check", "--tag", "compatibility", stdout=out, stderr=StringIO())
    assert "django_generic_tasks.E00" not in out.getvalue()


@override_settings(TASKS_BACKEND="no_such_module.Backend")
def test_check_reports_a_bad_backend_path_with_a_hint() -> None:
    (error,) = task_errors()
    assert isinstance(error, Error)
    assert error.id == "django_generic_tasks.E001"
    assert "'no_such_module.Backend' cannot be imported" in error.msg
    assert error.hint == "See the Settings page of the django-generic-tasks documentation."


@override_settings(
    TASKS_BACKEND="django_generic_tasks.backends.ThreadingBackend",
    TASKS_BACKEND_OPTIONS={"max_worker": 2},
)
def test_check_reports_an_unknown_option() -> None:
    (error,) = task_errors()
    assert error.id == "django_generic_tasks.E001"
    assert "unknown option(s) 'max_worker' for ThreadingBackend" in error.msg
    assert "accepted: max_workers, drain_timeout" in error.msg
    assert error.hint


@override_settings(TASKS_BACKEND="tests.unit.missing_extra_backend.MissingExtraBackend")
def test_check_reports_a_missing_extra_with_an_install_hint() -> None:
    (error,) = task_errors()
    assert error.id == "django_generic_tasks.E002"
    assert "pip install 'django-generic-tasks[nonexistent]'" in error.msg
    assert error.hint is not None
    assert "pip install" in error.hint


@override_settings(TASKS_BACKEND="no_such_module.Backend")
def test_manage_py_check_fails_on_a_bad_backend() -> None:
    with pytest.raises(SystemCheckError) as info:
        call_command("check", "--tag", "compatibility")
    assert "django_generic_tasks.E001" in str(info.value)
    assert "HINT: See the Settings page" in str(info.value)


@override_settings(TASKS_BACKEND=Grumpy)
def test_check_passes_on_the_backends_own_messages() -> None:
    (warning,) = [m for m in run_checks(tags=[Tags.compatibility]) if m.id == "grumpy.W001"]
    assert warning.hint == "cheer up"


@override_settings(TASKS_BACKEND="django_generic_tasks.backends.ThreadingBackend")
def test_running_the_checks_leaves_the_live_backend_running() -> None:
    backend = conf.get_backend()
    assert isinstance(backend, ThreadingBackend)
    run_checks(tags=[Tags.compatibility])
    assert conf.get_backend() is backend
    assert not backend._closed
