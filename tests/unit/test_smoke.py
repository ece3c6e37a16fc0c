import pytest

from tests.testapp.tasks import AddParams, AddTask, calls


def test_run_and_start_with_default_immediate_backend() -> None:
    assert AddTask(AddParams(a=1, b=2)).run() == 3
    handle = AddTask({"a": 2, "b": 3}).start()
    assert handle.status == "succeeded"
    assert handle.result == 5
    assert calls[-1] == ("tests.add", 5)


def test_the_package_exports_its_public_names() -> None:
    import importlib

    import django_generic_tasks as tasks
    from django_generic_tasks.core.registry import TaskRegistry

    assert set(tasks.__all__) <= set(dir(tasks))
    assert tasks.Task is importlib.import_module("django_generic_tasks.core.task").Task
    with pytest.raises(AttributeError):
        tasks.Nope  # type: ignore[attr-defined]  # noqa: B018
    # The registry instance, not the submodule of the same name.
    assert isinstance(tasks.registry, TaskRegistry)
    from django_generic_tasks import registry

    assert isinstance(registry, TaskRegistry)
