"""``Task[Params]``: params validation, how the params type is found, options, names."""

from __future__ import annotations

import types
from datetime import timedelta
from typing import Any, Generic, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

import django_generic_tasks as tasks
from django_generic_tasks import TaskDefinitionError
from django_generic_tasks.core.registry import registry
from tests.testapp.tasks import AddParams, AddTask, AsyncEchoTask, AsyncParams
from tests.unit.core_support import clean_registry  # noqa: F401

pytestmark = pytest.mark.usefixtures("clean_registry")


class Greeting(BaseModel):
    name: str
    times: int = 1


class LenientGreeting(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: str


class Other(BaseModel):
    name: str


# --- params ---------------------------------------------------------------------------------


def test_params_accept_a_model_instance_as_is() -> None:
    params = AddParams(a=1, b=2)
    assert AddTask(params).params is params


def test_params_accept_a_dict_and_validate_it() -> None:
    task = AddTask({"a": "4", "b": 5})
    assert task.params == AddParams(a=4, b=5)
    assert isinstance(task.params, AddParams)


def test_wrong_param_type_raises_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        AddTask({"a": "not a number"})
    assert [error["loc"] for error in info.value.errors()] == [("a",)]
    assert "a\n" in str(info.value)


def test_missing_required_param_raises_validation_error_naming_the_field() -> None:
    with pytest.raises(ValidationError) as info:
        AddTask({"b": 1})
    assert info.value.errors()[0]["loc"] == ("a",)
    assert info.value.errors()[0]["type"] == "missing"


def test_unknown_fields_in_a_dict_are_rejected_by_default() -> None:
    with pytest.raises(ValidationError) as info:
        AddTask({"a": 1, "bb": 2})
    errors = info.value.errors()
    assert [(e["loc"], e["type"]) for e in errors] == [(("bb",), "extra_forbidden")]


def test_unknown_fields_are_accepted_when_the_model_sets_extra() -> None:
    class LenientTask(tasks.Task[LenientGreeting]):
        def run(self) -> str:
            return self.params.name

    assert LenientTask({"name": "x", "typo": 1}).run() == "x"


def test_a_different_model_instance_is_rejected_with_type_error() -> None:
    with pytest.raises(TypeError, match="AddParams expected, got an instance of Other"):
        AddTask(Other(name="x"))  # type: ignore[arg-type]


def test_params_that_are_neither_model_nor_mapping_raise_type_error() -> None:
    with pytest.raises(TypeError, match="must be a AddParams or a mapping, not list"):
        AddTask([1, 2])  # type: ignore[arg-type]


def test_run_runs_the_task_now_and_returns_its_result() -> None:
    assert AddTask(AddParams(a=2, b=3)).run() == 5


def test_async_run_is_a_coroutine_function_that_execution_awaits() -> None:
    import asyncio

    task = AsyncEchoTask(AsyncParams(value="hi"))
    assert asyncio.run(task.run()) == "hi"


def test_base_run_raises_not_implemented() -> None:
    class Lazy(tasks.Task[Greeting]):
        pass

    with pytest.raises(NotImplementedError, match="Lazy"):
        Lazy({"name": "x"}).run()


def test_repr_shows_class_and_params() -> None:
    assert repr(AddTask({"a": 1})) == "<AddTask AddParams(a=1, b=0)>"


# --- finding the params type ----------------------------------------------------------------


def test_params_model_is_found_with_a_mixin_listed_before_task() -> None:
    class Mixin:
        def greet(self) -> str:
            return "hello"

    class Mixed(Mixin, tasks.Task[Greeting]):
        pass

    assert Mixed.params_model is Greeting
    assert Mixed.name in registry


def test_params_model_is_inherited_by_a_subclass_of_a_concrete_task() -> None:
    class Loud(AddTask):
        name = "tests.loud_add"

    assert Loud.params_model is AddParams
    assert registry.get("tests.loud_add") is Loud
    assert registry.get("tests.add") is AddTask


def test_params_model_is_found_through_a_pep695_generic_base() -> None:
    class Base[P: BaseModel](tasks.Task[P]):
        def describe(self) -> str:
            return type(self.params).__name__

    class Concrete(Base[Greeting]):
        pass

    assert Concrete.params_model is Greeting
    assert Concrete({"name": "x"}).describe() == "Greeting"
    assert f"{Base.__module__}.{Base.__qualname__}" not in registry


def test_params_model_is_found_through_an_old_style_typevar_generic_base() -> None:
    p = TypeVar("p", bound=BaseModel)

    class Base(tasks.Task[p], Generic[p]):
        pass

    class Concrete(Base[Greeting]):
        pass

    assert Concrete.params_model is Greeting


def test_params_model_follows_type_parameters_of_a_generic_base_with_two_parameters() -> None:
    class Base[X: BaseModel, P: BaseModel](tasks.Task[P]):
        extra_model: type[X]

    class Concrete(Base[Other, Greeting]):
        pass

    assert Concrete.params_model is Greeting


def test_concrete_task_without_params_type_fails_naming_the_class() -> None:
    with pytest.raises(TaskDefinitionError, match=r"test_task\..*NoParams does not say"):

        class NoParams(tasks.Task):  # type: ignore[type-arg]
            pass


def test_task_with_a_non_model_params_type_fails_at_class_creation() -> None:
    with pytest.raises(TaskDefinitionError, match="IntParams"):

        class IntParams(tasks.Task[int]):  # type: ignore[type-var]
            pass


def test_abstract_true_opts_out_of_params_and_registration() -> None:
    class Base(tasks.Task):  # type: ignore[type-arg]
        abstract = True
        queue = "emails"

    class Concrete(Base, tasks.Task[Greeting]):
        pass

    assert f"{Base.__module__}.{Base.__qualname__}" not in registry
    assert Concrete.params_model is Greeting
    assert Concrete.queue == "emails"
    assert not Concrete.abstract


# --- names and options ----------------------------------------------------------------------


def test_default_name_is_module_and_qualified_name() -> None:
    class Named(tasks.Task[Greeting]):
        pass

    assert Named.name == f"{__name__}.test_default_name_is_module_and_qualified_name.<locals>.Named"
    assert registry.get(Named.name) is Named


def test_names_are_stable_across_redefinition() -> None:
    def define() -> type[tasks.Task[Any]]:
        class Stable(tasks.Task[Greeting]):
            pass

        return Stable

    first, second = define(), define()
    assert first.name == second.name
    assert registry.get(first.name) is second


def test_explicit_name_is_used_on_the_wire() -> None:
    assert AddTask.name == "tests.add"
    assert registry.get("tests.add") is AddTask


def test_option_defaults_are_sane() -> None:
    class Plain(tasks.Task[Greeting]):
        pass

    assert (Plain.queue, Plain.priority, Plain.max_attempts, Plain.timeout) == (
        "default",
        0,
        1,
        None,
    )
    assert Plain.retry_on == (Exception,)
    assert Plain.discard_on == ()


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("name", "", "name must be a non-empty string"),
        ("name", "a/b", "name must be a non-empty string without '/'"),
        ("name", 42, "name must be a non-empty string"),
        ("max_attempts", 0, "max_attempts must be an integer >= 1"),
        ("max_attempts", 1.5, "max_attempts must be an integer >= 1"),
        ("priority", 101, "priority must be an integer between -100 and 100"),
        ("priority", "high", "priority must be an integer between -100 and 100"),
        ("timeout", 0, "timeout must be a positive number"),
        ("timeout", "soon", "timeout must be a positive number"),
        ("retry_on", ValueError, "retry_on must be a tuple of exception classes"),
        ("discard_on", ("x",), "discard_on must be a tuple of exception classes"),
        ("queue", "", "queue must be a non-empty string"),
        ("backoff_base", -1, "backoff_base must be a number >= 0"),
        ("backoff_factor", 0.5, "backoff_factor must be a number >= 1"),
        ("backoff_max", -1, "backoff_max must be a number >= 0"),
    ],
)
def test_invalid_options_fail_at_class_creation(option: str, value: object, message: str) -> None:
    with pytest.raises(TaskDefinitionError, match=message) as info:
        types.new_class(
            "BadOption",
            (tasks.Task[Greeting],),
            exec_body=lambda ns: ns.update({option: value, "__module__": __name__}),
        )
    assert f"{__name__}.BadOption.{option}" in str(info.value)


# --- backoff --------------------------------------------------------------------------------


class _Backoff(tasks.Task[Greeting]):
    abstract = True
    backoff_base = 2.0
    backoff_factor = 3.0
    backoff_max = 50.0
    backoff_jitter = False


def test_backoff_is_exponential_without_jitter() -> None:
    assert [_Backoff.backoff(n).total_seconds() for n in (1, 2, 3)] == [2.0, 6.0, 18.0]


def test_backoff_is_capped_at_backoff_max() -> None:
    assert _Backoff.backoff(4) == timedelta(seconds=50)
    assert _Backoff.backoff(100) == timedelta(seconds=50)


def test_backoff_with_jitter_stays_between_half_and_all_of_the_wait() -> None:
    class Jittery(_Backoff):
        abstract = True
        backoff_jitter = True

    for attempt in (1, 2, 3, 4, 50):
        ceiling = min(2.0 * 3.0 ** (attempt - 1), 50.0)
        waits = {Jittery.backoff(attempt).total_seconds() for _ in range(200)}
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(waits) > 1
