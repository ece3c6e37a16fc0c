"""CloudTasksBackend keeps working in a process forked after its client was made (gunicorn
``--preload``): the child makes its own gRPC client instead of using the parent's channel."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from tests.cloudtasks_emulator import LOCATION, PROJECT, ROOT, Emulator
from tests.cloudtasks_emulator import cloudtasks_emulator as cloudtasks_emulator  # noqa: PLC0414 - a fixture

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import os, sys
    import django
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    django.setup()
    from django_generic_tasks.backends import CloudTasksBackend
    from tests.testapp.tasks import AddTask

    backend = CloudTasksBackend(
        project=sys.argv[1], location=sys.argv[2], queue=sys.argv[3],
        base_url="http://127.0.0.1:9/api/tasks/", emulator_host=sys.argv[4], allow_emulator=True,
    )
    AddTask({"a": 1}).start(backend=backend)  # the parent's client exists before the fork
    parent_client = backend._clients.get()
    pid = os.fork()
    if pid == 0:
        try:
            AddTask({"a": 2}).start(backend=backend)
            fresh = backend._clients.get() is not parent_client
            os._exit(0 if fresh else 3)
        except BaseException as exc:
            print("child failed:", exc, file=sys.stderr)
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    AddTask({"a": 3}).start(backend=backend)
    assert backend._clients.get() is parent_client
    print("child exit status", os.waitstatus_to_exitcode(status))
    """
)


def test_a_forked_child_makes_its_own_client_and_enqueues(cloudtasks_emulator: Emulator) -> None:
    queue = cloudtasks_emulator.create_queue(paused=True)
    try:
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT, PROJECT, LOCATION, queue, cloudtasks_emulator.host],
            check=False,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "child exit status 0" in done.stdout, done.stderr
        tasks = cloudtasks_emulator.list_tasks(queue)
        bodies = sorted(t.http_request.body for t in tasks)
        assert bodies == [b'{"a":1,"b":0}', b'{"a":2,"b":0}', b'{"a":3,"b":0}']
    finally:
        cloudtasks_emulator.delete_queue(queue)
