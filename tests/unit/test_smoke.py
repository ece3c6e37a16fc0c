from tests.testapp.tasks import AddParams, AddTask, calls


def test_run_and_start_with_default_immediate_backend() -> None:
    assert AddTask(AddParams(a=1, b=2)).run() == 3
    handle = AddTask({"a": 2, "b": 3}).start()
    assert handle.status == "succeeded"
    assert handle.result == 5
    assert calls[-1] == ("tests.add", 5)
