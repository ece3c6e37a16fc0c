"""DjangoTasksBackend on django-tasks-db vs a plain ``@task`` function with the same no-op body.

Both go through the same django-tasks-db backend (alias ``db``) on one SQLite file database.
For each variant: start N runs (timed: starts/s, one per call), then run ``db_worker --batch``
as a separate process until the queue is empty; the drain rate is N over the span from the
first run's ``started_at`` to the last run's ``finished_at`` (worker start-up excluded).
Variants alternate over several rounds; medians are reported.
Run: ``.venv/bin/python bench/bench_django_tasks.py [--quick]``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_plain: Any = None


def _noop(token: str) -> None:
    """The baseline's body: nothing."""
    return None


# The worker finds the plain task by its dotted path, whether this file runs as a script or not.
_noop.__module__, _noop.__name__, _noop.__qualname__ = (
    "bench.bench_django_tasks",
    "plain_task",
    "plain_task",
)


def __getattr__(name: str) -> Any:
    # The plain @task is built on first use: building it needs the TASKS setting.
    global _plain
    if name == "plain_task":
        if _plain is None:
            from django.tasks import task

            _plain = task(_noop)
        return _plain
    raise AttributeError(name)


def _setup(database: Path) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ["DJANGO_SETTINGS_MODULE"] = "tests.settings_django_tasks"
    os.environ["TASKS_TEST_DB_NAME"] = str(database)
    os.environ.pop("DATABASE_URL", None)
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _start_runs(variant: str, count: int) -> float:
    from tests.workerapp.tasks import NoopTask

    from django_generic_tasks import conf
    from django_generic_tasks.backends.django_tasks import DjangoTasksBackend

    started = time.perf_counter()
    if variant == "plain":
        task = __getattr__("plain_task").using(backend="db")
        for _ in range(count):
            task.enqueue("x")
    else:
        with conf.override_backend(DjangoTasksBackend(alias="db")):
            for _ in range(count):
                NoopTask({"token": "x"}).start()
    return count / (time.perf_counter() - started)


def _drain(count: int) -> float:
    from django.db.models import Max, Min
    from django_tasks_db.models import DBTaskResult

    command = [sys.executable, "-m", "django", "db_worker", "--backend", "db", "--batch"]
    command += [
        "--interval",
        "0.05",
        "--no-startup-delay",
        "--no-reload",
        "-v",
        "0",
        "--skip-checks",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=600)
    done = DBTaskResult.objects.filter(status="SUCCESSFUL")
    if done.count() != count:
        raise RuntimeError(f"db_worker finished {done.count()} of {count} runs")
    span = done.aggregate(first=Min("started_at"), last=Max("finished_at"))
    seconds = (span["last"] - span["first"]).total_seconds()
    DBTaskResult.objects.all().delete()
    return count / seconds


def main(quick: bool = False) -> None:
    """Print the side-by-side table (quick: a couple of hundred runs, one round)."""
    import importlib.util

    if importlib.util.find_spec("django_tasks_db") is None:
        print("bench_django_tasks: django-tasks-db is not installed; skipped.\n")
        return
    count, rounds = (200, 1) if quick else (2000, 3)
    results: dict[str, dict[str, list[float]]] = {
        v: {"start": [], "drain": []} for v in ("plain", "ours")
    }
    with tempfile.TemporaryDirectory() as tmp:
        _setup(Path(tmp) / "bench.sqlite3")
        for variant in ("plain", "ours"):  # warm-up: connections, imports, file growth
            _start_runs(variant, 50)
            _drain(50)
        for round_number in range(rounds):
            for variant in ("plain", "ours") if round_number % 2 == 0 else ("ours", "plain"):
                results[variant]["start"].append(_start_runs(variant, count))
                results[variant]["drain"].append(_drain(count))
    print(f"### DjangoTasksBackend vs plain @task on django-tasks-db ({count} no-op runs)\n")
    print(f"SQLite file database, `db_worker --batch --interval 0.05`; median of {rounds}\n")
    from paired_table import paired_table  # beside this file; workers need not import it

    print(
        paired_table(
            results,
            "plain `@task`",
            "DjangoTasksBackend",
            {"start": "start, 1 per call (runs/s)", "drain": "drain, 1 worker (runs/s)"},
        )
    )


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
