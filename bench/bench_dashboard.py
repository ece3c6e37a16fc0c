"""Admin dashboard render time with a big history, on the machine's PostgreSQL.

Fills a fresh database with ``rows`` finished runs spread over the last 7 days (8 tasks, 2
queues, ~2 % failed, ~1 % discarded), the per-minute rollups the workers would have kept for
them, 10,000 waiting runs, an hour of queue samples and 4 live workers; then renders the
dashboard through Django's test client (in-process: the view, its queries and its template,
no network), and prints the median, min and max of ``renders`` renders after 2 warm-ups.

Run: ``.venv/bin/python bench/bench_dashboard.py [--quick] [--rows N]`` (default 1,000,000).
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DATABASE = "dgt_bench_dashboard"
URL = "/admin/django_generic_tasks/dashboard/"
TABLE = "django_generic_tasks_taskrun"
ROLLUPS = "django_generic_tasks_runrollup"


def _pg(sql: str, database: str = "postgres") -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", user="postgres", dbname=database, autocommit=True
    ) as conn:
        cursor = conn.execute(sql)  # type: ignore[arg-type]
        return cursor.fetchall() if cursor.description else []


def _configure() -> None:
    import django
    from django.conf import settings

    sys.path.insert(0, str(ROOT / "src"))
    settings.configure(
        SECRET_KEY="bench-only",
        USE_TZ=True,
        DEBUG=False,
        ALLOWED_HOSTS=["*"],
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_generic_tasks",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        ROOT_URLCONF=__name__,
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": DATABASE,
                "USER": "postgres",
                "HOST": "127.0.0.1",
                "PORT": 5432,
                "CONN_MAX_AGE": None,
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        STATIC_URL="static/",
        TASKS_BACKEND="django_generic_tasks.backends.DatabaseBackend",
    )
    django.setup()


urlpatterns: list[Any] = []


def _fill(rows: int) -> None:
    """``rows`` finished runs over 7 days, their rollups, waiting runs, samples, workers."""
    from datetime import UTC, datetime

    from django.db import connection

    from django_generic_tasks import store
    from django_generic_tasks.models import QueueSample
    from django_generic_tasks.store.rollups import epoch_minute

    spacing = 7 * 24 * 3600 / rows
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (id, task_name, params, queue, priority, status, attempt, "
            "max_attempts, run_after, created_at, started_at, finished_at, worker_id, "
            "error_type, error_message, error_traceback) "
            "SELECT gen_random_uuid(), 'shop.task_' || (i % 8), '{}'::jsonb, "
            "CASE WHEN i % 3 = 0 THEN 'mail' ELSE 'default' END, 0, "
            "CASE WHEN i % 50 = 0 THEN 'failed' WHEN i % 97 = 0 THEN 'discarded' "
            "ELSE 'succeeded' END, 1, 3, ts, ts, ts, ts + (i % 40) * interval '1 ms', 'bench', "
            "CASE WHEN i % 50 = 0 THEN 'shop.CardDeclined' ELSE '' END, '', '' "
            f"FROM (SELECT i, now() - i * interval '{spacing} seconds' AS ts "
            f"FROM generate_series(1, {int(rows)}) AS i) AS s"
        )
        # The rollups the workers would have kept (durations here all fall in d2/d3).
        cursor.execute(
            f"INSERT INTO {ROLLUPS} (minute, task_name, queue, outcome, runs, seconds, "
            "last_run_id, d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11) "
            "SELECT floor(extract(epoch FROM finished_at) / 60)::bigint, task_name, queue, "
            "status, count(*), sum(extract(epoch FROM finished_at - started_at)), "
            "max(id::text), 0, 0, "
            "count(*) FILTER (WHERE finished_at - started_at <= interval '10 ms'), "
            "count(*) FILTER (WHERE finished_at - started_at > interval '10 ms'), "
            "0, 0, 0, 0, 0, 0, 0, 0 "
            f"FROM {TABLE} WHERE finished_at IS NOT NULL GROUP BY 1, 2, 3, 4"
        )
        cursor.execute(
            f"INSERT INTO {TABLE} (id, task_name, params, queue, priority, status, attempt, "
            "max_attempts, run_after, created_at, error_type, error_message, error_traceback) "
            "SELECT gen_random_uuid(), 'shop.task_' || (i % 8), '{}'::jsonb, "
            "CASE WHEN i % 3 = 0 THEN 'mail' ELSE 'default' END, 0, 'ready', 0, 3, "
            "now() - i * interval '10 ms', now(), '', '', '' FROM generate_series(1, 10000) i"
        )
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
        cursor.execute(f"VACUUM ANALYZE {ROLLUPS}")
    now = datetime.now(UTC)
    last = epoch_minute(now)
    QueueSample.objects.bulk_create(
        QueueSample(minute=m, queue=q, waiting=5000, lag=3.0)
        for m in range(last - 59, last + 1)
        for q in ("default", "mail")
    )
    for n in range(4):
        info = store.WorkerInfo(f"bench:{n}", "bench", n, (), 4, 1000 * n, now)
        store.using().workers.beat(info, 3600, now)


def main(quick: bool = False, rows: int | None = None) -> None:
    """Print the render times (quick: 20,000 runs)."""
    rows = rows or (20_000 if quick else 1_000_000)
    try:
        _pg("SELECT 1")
    except Exception as exc:
        print(f"bench_dashboard: PostgreSQL is not reachable ({exc}); skipped.\n")
        return
    _pg(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
    _pg(f'CREATE DATABASE "{DATABASE}"')
    try:
        _measure(rows, 5 if quick else 15)
    finally:
        from django.db import connections

        connections.close_all()
        _pg(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')


def _measure(rows: int, renders: int) -> None:
    _configure()
    from django.contrib import admin
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.test import Client
    from django.urls import path

    urlpatterns.append(path("admin/", admin.site.urls))
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    _fill(rows)
    filled = time.perf_counter() - started
    [(rollups,)] = _pg(f"SELECT count(*) FROM {ROLLUPS}", DATABASE)
    client = Client()
    client.force_login(User.objects.create_superuser("bench", "bench@example.com", "x"))
    timings: dict[str, list[float]] = {"full page": [], "refresh (partial)": []}
    for _ in range(2):
        client.get(URL)
    for _ in range(renders):
        for name, params in (("full page", {}), ("refresh (partial)", {"partial": "1"})):
            began = time.perf_counter()
            response = client.get(URL, params)
            timings[name].append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, response.status_code
    print(
        f"### Admin dashboard render, PostgreSQL, {rows:,} finished runs "
        f"({rollups:,} rollup rows, 10,000 waiting runs; filled in {filled:.0f} s)\n"
    )
    print("| render | median | min | max | renders |")
    print("| --- | --- | --- | --- | --- |")
    for name, values in timings.items():
        print(
            f"| {name} | {statistics.median(values):.1f} ms | {min(values):.1f} ms | "
            f"{max(values):.1f} ms | {len(values)} |"
        )
    print("\nTarget: ≤ 300 ms server time with 1,000,000 finished runs (median).\n")


if __name__ == "__main__":
    count = int(sys.argv[sys.argv.index("--rows") + 1]) if "--rows" in sys.argv else None
    main(quick="--quick" in sys.argv, rows=count)
