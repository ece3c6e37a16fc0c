"""Settings: TASKS_BACKEND as path/class/instance, options, defaults, re-reading, bad values."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from django_generic_tasks import ConfigurationError, MissingDependencyError, TaskStatus, conf
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend, ThreadingBackend
from django_generic_tasks.backends.base import BaseBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.handles import TaskHandle
from tests.testapp.tasks import AddTask, calls


class NeedsOption(BaseBackend):
    """A backend with one required and one optional constructor argument."""

    def __init__(self, url: str, *, retries: int = 3) -> None:
        if not url.startswith("memory://"):
            raise ValueError("url must start with memory://")
        self.url, self.retries = url, retries

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        return self.handle_for(request)


class TakesAnything(NeedsOption):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__("memory://x")
        self.kwargs = kwargs


class NeedsExtraAtRunTime(BaseBackend):
    def __init__(self) -> None:
        raise MissingDependencyError("NeedsExtraAtRunTime needs grpc: pip install 'x[grpc]'.")

    def enqueue(self, request: EnqueueRequest) -> TaskHandle:
        raise AssertionError("never built")


class LegacyBackend:
    """The seed's older backend interface: just run(task)."""

    def __init__(self) -> None:
        self.ran: list[Any] = []

    def run(self, task: Any) -> None:
        self.ran.append(task)
        task.run()


def test_unset_tasks_backend_means_immediate_backend() -> None:
    assert isinstance(conf.get_backend(), ImmediateBackend)
    assert conf.get_settings().backend == conf.DEFAULT_BACKEND


@override_settings(TASKS_BACKEND=None, TASKS_BACKEND_OPTIONS=None)
def test_none_settings_mean_the_defaults() -> None:
    assert isinstance(conf.get_backend(), ImmediateBackend)
    assert conf.get_settings().backend_options == {}


@override_settings(
    TASKS_BACKEND="django_generic_tasks.backends.ThreadingBackend",
    TASKS_BACKEND_OPTIONS={"max_workers": 2},
)
def test_tasks_backend_as_dotted_path_with_options() -> None:
    backend = conf.get_backend()
    assert isinstance(backend, ThreadingBackend)
    assert backend.max_workers == 2
    assert conf.get_backend() is backend


def test_tasks_backend_as_class_with_options() -> None:
    with override_settings(
        TASKS_BACKEND=NeedsOption, TASKS_BACKEND_OPTIONS={"url": "memory://a", "retries": 1}
    ):
        backend = conf.get_backend()
    assert isinstance(backend, NeedsOption)
    assert (backend.url, backend.retries) == ("memory://a", 1)


def test_tasks_backend_as_instance_is_used_as_is() -> None:
    instance = InMemoryBackend()
    with override_settings(TASKS_BACKEND=instance):
        assert conf.get_backend() is instance
        AddTask({"a": 1}).start()
    assert len(instance.pending()) == 1


def test_options_with_an_instance_are_a_configuration_error() -> None:
    with (
        override_settings(TASKS_BACKEND=InMemoryBackend(), TASKS_BACKEND_OPTIONS={"x": 1}),
        pytest.raises(ConfigurationError, match="already an instance"),
    ):
        conf.get_backend()


def test_override_settings_is_picked_up_and_undone() -> None:
    assert isinstance(conf.get_backend(), ImmediateBackend)
    with override_settings(TASKS_BACKEND="django_generic_tasks.backends.InMemoryBackend"):
        assert isinstance(conf.get_backend(), InMemoryBackend)
        handle = AddTask({"a": 1}).start()
        assert handle.status is TaskStatus.READY
    assert isinstance(conf.get_backend(), ImmediateBackend)
    assert AddTask({"a": 1}).start().status is TaskStatus.SUCCEEDED


def test_settings_fixture_changes_are_picked_up(settings: Any) -> None:
    assert isinstance(conf.get_backend(), ImmediateBackend)
    settings.TASKS_BACKEND = "django_generic_tasks.backends.InMemoryBackend"
    assert isinstance(conf.get_backend(), InMemoryBackend)


def test_changing_the_backend_setting_closes_the_old_backend() -> None:
    with override_settings(TASKS_BACKEND="django_generic_tasks.backends.ThreadingBackend"):
        old = conf.get_backend()
        assert isinstance(old, ThreadingBackend)
        AddTask({"a": 1}).start()
    assert old._closed
    assert calls == [("tests.add", 1)]


def test_other_settings_do_not_reset_the_backend() -> None:
    backend = conf.get_backend()
    with override_settings(SOMETHING_ELSE=1):
        assert conf.get_backend() is backend


@pytest.mark.parametrize(
    "path",
    [
        "no_such_module.Backend",
        "django_generic_tasks.backends.NoSuchBackend",
        "NotADottedPath",
    ],
)
def test_a_backend_path_that_does_not_import_is_a_configuration_error(path: str) -> None:
    with override_settings(TASKS_BACKEND=path):
        with pytest.raises(ConfigurationError, match=f"TASKS_BACKEND {path!r} cannot be imported"):
            conf.get_backend()
        with pytest.raises(ConfigurationError):
            AddTask({"a": 1}).start()
    assert calls == []


def test_an_unknown_option_is_a_configuration_error_listing_accepted_ones() -> None:
    with (
        override_settings(
            TASKS_BACKEND=NeedsOption, TASKS_BACKEND_OPTIONS={"url": "memory://", "retry": 2}
        ),
        pytest.raises(ConfigurationError) as info,
    ):
        conf.get_backend()
    assert "unknown option(s) 'retry' for NeedsOption" in str(info.value)
    assert "accepted: url, retries" in str(info.value)


def test_a_backend_taking_any_keyword_accepts_any_option() -> None:
    with override_settings(TASKS_BACKEND=TakesAnything, TASKS_BACKEND_OPTIONS={"whatever": 1}):
        backend = conf.get_backend()
    assert isinstance(backend, TakesAnything)
    assert backend.kwargs == {"whatever": 1}


@pytest.mark.parametrize(
    ("backend", "options", "message"),
    [
        (NeedsOption, {}, "missing 1 required"),
        (NeedsOption, {"url": "http://x"}, "url must start with memory://"),
        ("django_generic_tasks.backends.ThreadingBackend", {"max_workers": 0}, "max_workers"),
    ],
)
def test_invalid_option_values_are_a_configuration_error(
    backend: Any, options: dict[str, Any], message: str
) -> None:
    with (
        override_settings(TASKS_BACKEND=backend, TASKS_BACKEND_OPTIONS=options),
        pytest.raises(ConfigurationError, match="TASKS_BACKEND_OPTIONS are not valid") as info,
    ):
        conf.get_backend()
    assert message in str(info.value)


def test_something_that_is_not_a_backend_is_a_configuration_error() -> None:
    with (
        override_settings(TASKS_BACKEND="django_generic_tasks.conf.TasksSettings"),
        pytest.raises(ConfigurationError, match="is not a backend: backends subclass"),
    ):
        conf.get_backend()


def test_a_missing_extra_raises_missing_dependency_error_with_the_install_hint() -> None:
    with (
        override_settings(TASKS_BACKEND="tests.unit.missing_extra_backend.MissingExtraBackend"),
        pytest.raises(MissingDependencyError, match=r"pip install 'django-generic-tasks\["),
    ):
        conf.get_backend()


def test_a_missing_extra_at_construction_raises_missing_dependency_error() -> None:
    with (
        override_settings(TASKS_BACKEND=NeedsExtraAtRunTime),
        pytest.raises(MissingDependencyError, match="needs grpc"),
    ):
        conf.get_backend()


def test_an_object_that_is_no_base_backend_is_refused_with_a_pointer() -> None:
    # The adapter for older releases' run(task) backends is gone (0.x): such an object, like
    # any other that does not subclass BaseBackend, cannot say what it can do.
    with (
        override_settings(TASKS_BACKEND=LegacyBackend()),
        pytest.raises(ConfigurationError, match=r"subclass.*BaseBackend.*older releases"),
    ):
        conf.get_backend()


def test_invalid_other_settings_are_a_configuration_error_naming_the_setting() -> None:
    with (
        override_settings(TASKS_OIDC_CLOCK_SKEW=-5, TASKS_BACKEND_OPTIONS="nope"),
        pytest.raises(ConfigurationError) as info,
    ):
        conf.get_settings()
    assert "TASKS_OIDC_CLOCK_SKEW" in str(info.value)
    assert "TASKS_BACKEND_OPTIONS" in str(info.value)


def test_override_backend_wins_over_settings_and_nests() -> None:
    outer, inner = InMemoryBackend(), InMemoryBackend()
    with conf.override_backend(outer):
        with conf.override_backend(inner):
            assert conf.get_backend() is inner
        assert conf.get_backend() is outer
    assert isinstance(conf.get_backend(), ImmediateBackend)


def test_http_settings_default_to_the_safe_choice() -> None:
    current = conf.get_settings()
    assert (current.api_expose_error_messages, current.api_queues) == (False, [])


@pytest.mark.parametrize(
    ("setting", "value"),
    [("TASKS_API_EXPOSE_ERROR_MESSAGES", "yes"), ("TASKS_API_QUEUES", "bulk")],
)
def test_http_settings_of_the_wrong_type_are_a_configuration_error(
    setting: str, value: Any
) -> None:
    with override_settings(**{setting: value}), pytest.raises(ConfigurationError, match=setting):
        conf.get_settings()
