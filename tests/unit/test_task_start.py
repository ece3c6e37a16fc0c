"""``Task.start()``: the handle it returns, its options, and options a backend cannot honour."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from django_generic_tasks import InvalidOptionError, TaskStatus, UnsupportedOptionError
from django_generic_tasks.backends import ImmediateBackend, InMemoryBackend, ThreadingBackend
from django_generic_tasks.backends.base import BaseBackend
from django_generic_tasks.core.enqueue import EnqueueRequest
from django_generic_tasks.core.handles import TaskHandle
from tests.testapp.tasks import AddParams, AddTask, calls


@pytest.fixture
def memory() -> InMemoryBackend:
    return InMemoryBackend()


def test_start_returns_handle_with_id_name_and_status() -> None:
    handle = AddTask(AddParams(a=1, b=1)).start()
    assert isinstance(handle, TaskHandle)
    assert handle.name == "tests.add"
    assert handle.status is TaskStatus.SUCCEEDED
    assert len(handle.id) == 36
    assert handle.id[14] == "7"  # a version-7 UUID


def test_each_start_gets_a_new_time_ordered_run_id(memory: InMemoryBackend) -> None:
    ids = [AddTask({"a": n}).start(backend=memory).id for n in range(20)]
    assert len(set(ids)) == 20
    assert ids == sorted(ids)


def test_start_uses_the_task_class_options_by_default(memory: InMemoryBackend) -> None:
    AddTask({"a": 1}).start(backend=memory)
    (request,) = memory.pending()
    assert (request.queue, request.priority, request.run_after, request.key) == (
        "default",
        0,
        None,
        None,
    )
    assert (request.max_attempts, request.timeout, request.attempt) == (1, None, 1)
    assert request.params_json == '{"a":1,"b":0}'


def test_start_options_reach_the_backend(memory: InMemoryBackend) -> None:
    before = datetime.now(UTC)
    handle = AddTask({"a": 1}).start(
        delay=timedelta(minutes=5), queue="slow", priority=7, key="k1", backend=memory
    )
    (request,) = memory.pending()
    assert request.queue == "slow"
    assert request.priority == 7
    assert request.key == "k1"
    assert request.run_after is not None
    assert before + timedelta(minutes=5) <= request.run_after
    assert request.run_after <= datetime.now(UTC) + timedelta(minutes=5)
    assert handle.status is TaskStatus.SCHEDULED


def test_start_with_eta_sets_run_after_to_it(memory: InMemoryBackend) -> None:
    eta = datetime(2030, 1, 1, tzinfo=UTC)
    AddTask({"a": 1}).start(eta=eta, backend=memory)
    assert memory.pending()[0].run_after == eta


def test_start_many_returns_one_handle_per_params(memory: InMemoryBackend) -> None:
    handles = AddTask.start_many([{"a": 1}, AddParams(a=2)], queue="bulk", backend=memory)
    assert [h.name for h in handles] == ["tests.add", "tests.add"]
    assert [r.params_json for r in memory.pending()] == ['{"a":1,"b":0}', '{"a":2,"b":0}']
    assert {r.queue for r in memory.pending()} == {"bulk"}


def test_start_many_runs_each_on_the_immediate_backend() -> None:
    handles = AddTask.start_many([{"a": 1}, {"a": 2, "b": 2}])
    assert [h.result for h in handles] == [1, 4]
    assert calls == [("tests.add", 1), ("tests.add", 4)]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"delay": timedelta(1), "eta": datetime.now(UTC)}, "either delay or eta"),
        ({"delay": timedelta(seconds=-1)}, "must not be negative"),
        ({"delay": 5}, "must be a datetime.timedelta"),
        ({"eta": datetime(2030, 1, 1)}, "timezone-aware"),
        ({"priority": 101}, "from -100 to 100"),
        ({"priority": "high"}, "from -100 to 100"),
        ({"queue": ""}, "non-empty string"),
        ({"key": ""}, "non-empty string of <= 255"),
        ({"key": "k" * 256}, "non-empty string of <= 255"),
    ],
)
def test_invalid_start_options_raise_invalid_option_error(
    memory: InMemoryBackend, options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidOptionError, match=message):
        AddTask({"a": 1}).start(backend=memory, **options)  # type: ignore[arg-type]
    assert memory.pending() == []


@pytest.mark.parametrize(
    ("backend_class", "options", "message"),
    [
        (ImmediateBackend, {"delay": timedelta(seconds=1)}, "cannot run a task later"),
        (ImmediateBackend, {"eta": datetime(2030, 1, 1, tzinfo=UTC)}, "cannot run a task later"),
        (ImmediateBackend, {"key": "once"}, "cannot deduplicate runs"),
        (ThreadingBackend, {"key": "once"}, "cannot deduplicate runs"),
    ],
)
def test_an_option_the_backend_cannot_honour_raises_at_start(
    backend_class: type[BaseBackend], options: dict[str, object], message: str
) -> None:
    backend = backend_class()
    with pytest.raises(UnsupportedOptionError, match=message) as info:
        AddTask({"a": 1}).start(backend=backend, **options)  # type: ignore[arg-type]
    assert backend_class.__name__ in str(info.value)
    assert calls == []


def test_priority_on_a_backend_without_priorities_raises_at_start() -> None:
    class Fifo(BaseBackend):
        def enqueue(self, request: EnqueueRequest) -> TaskHandle:
            raise AssertionError("must not be reached")

    with pytest.raises(UnsupportedOptionError, match="Fifo cannot order runs by priority"):
        AddTask({"a": 1}).start(backend=Fifo(), priority=5)


def test_unsupported_options_are_also_refused_by_start_many() -> None:
    with pytest.raises(UnsupportedOptionError):
        AddTask.start_many([{"a": 1}], delay=timedelta(seconds=1), backend=ImmediateBackend())
    assert calls == []


def test_task_enqueued_is_sent_once_the_backend_accepts_a_run(memory: InMemoryBackend) -> None:
    from django_generic_tasks.signals import task_enqueued

    seen: list[tuple[object, str]] = []

    def on_enqueued(sender: object, request: EnqueueRequest, **kwargs: object) -> None:
        seen.append((sender, request.task_name))

    task_enqueued.connect(on_enqueued)
    try:
        AddTask({"a": 1}).start(backend=memory)
        AddTask.start_many([{"a": 2}], backend=memory)
        with pytest.raises(UnsupportedOptionError):
            AddTask({"a": 3}).start(backend=ImmediateBackend(), key="k")
    finally:
        task_enqueued.disconnect(on_enqueued)
    assert seen == [(AddTask, "tests.add"), (AddTask, "tests.add")]


def test_base_backend_is_abstract_until_enqueue_is_implemented_and_has_a_plain_repr() -> None:
    with pytest.raises(TypeError, match="enqueue"):
        BaseBackend()  # type: ignore[abstract]

    class Minimal(BaseBackend):
        def enqueue(self, request: EnqueueRequest) -> TaskHandle:
            return self.handle_for(request)

    backend = Minimal()
    assert repr(backend) == "<Minimal>"
    assert backend.check() == []
    assert backend.name == Minimal.name == "Minimal"
