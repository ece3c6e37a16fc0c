"""``python manage.py tasks_status [--json] [--wide]``: queues, live workers and the last
failures of the runs stored by ``DatabaseBackend``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from django_generic_tasks import store
from django_generic_tasks.support.text import printable

from ._arguments import bounded, database_alias

FAILURE_WINDOW = 7 * 24 * 60
"""Minutes back the last failures are looked for (in the rollups)."""
MAX_FAILURES = 10_000
"""The most failures ``--failures`` may ask for."""


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """``rows`` under ``headers``, in aligned columns; control characters in a cell (an error
    message's terminal escapes) are printed as escapes."""
    cells = [[str(c) for c in headers], *[[printable(str(c)) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


MIN_ERROR_WIDTH = 30
"""The error column keeps at least this many characters, however narrow the terminal."""


def _fit_last_column(headers: Sequence[str], rows: list[list[Any]], width: int) -> None:
    """Cut each row's last cell (with an ellipsis) so that the table fits ``width``
    columns; ``--wide`` and ``--json`` keep the whole text."""
    if not rows:
        return
    before = [
        max(len(str(cell)) for cell in (header, *(row[i] for row in rows)))
        for i, header in enumerate(headers[:-1])
    ]
    room = max(MIN_ERROR_WIDTH, width - sum(before) - 2 * len(before) - 1)
    for row in rows:
        text = str(row[-1])
        if len(text) > room:
            row[-1] = text[: room - 1] + "…"


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.1f}s"
    if seconds < 7200:
        return f"{seconds / 60:.1f}m"
    return f"{seconds / 3600:.1f}h"


class Command(BaseCommand):
    """Print what the database-backed queues hold and who works on them."""

    help = (
        "Show queues (waiting, running, scheduled, oldest wait), live workers and the last "
        "failures of DatabaseBackend, as tables or --json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        """``--json``, ``--failures N``, ``--database``."""
        parser.add_argument("--json", action="store_true", help="One JSON document.")
        parser.add_argument(
            "--failures", type=int, default=5, help="Last failures shown (default %(default)s)."
        )
        parser.add_argument("--database", default="default", help="Database alias.")
        parser.add_argument(
            "--wide",
            action="store_true",
            help="Full error texts (by default they are cut to fit the terminal's width).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        """Read through the store and print."""
        limit = bounded(options["failures"], "--failures", 0, MAX_FAILURES)
        found = store.using(database_alias(options["database"]))
        runs = found.observations
        now = timezone.now()
        queues = runs.queue_depths(now)
        workers = found.workers.live(now)
        failures = runs.last_failures(now, FAILURE_WINDOW, limit)
        unserved = {q.queue for q in store.unserved(queues, workers)}
        paused = found.queue.flow.paused()
        if options["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "at": now.isoformat(),
                        "queues": [
                            {
                                "queue": q.queue,
                                "waiting": q.waiting,
                                "running": q.running,
                                "scheduled": q.scheduled,
                                "oldest_wait_seconds": round(q.oldest_wait, 3),
                                "served": q.queue not in unserved,
                            }
                            for q in queues
                        ],
                        "paused": [
                            {"kind": kind, "name": name, "since": since.isoformat()}
                            for kind, name, since in paused
                        ],
                        "workers": [
                            {
                                "id": w.worker_id,
                                "host": w.host,
                                "pid": w.pid,
                                "queues": [n for n in w.queues.split(",") if n and n[0] != "!"],
                                "exclude_queues": [
                                    n[1:] for n in w.queues.split(",") if n and n[0] == "!"
                                ],
                                "concurrency": w.concurrency,
                                "runs_done": w.runs_done,
                                "started_at": w.started_at.isoformat(),
                                "last_beat": w.last_beat.isoformat(),
                            }
                            for w in workers
                        ],
                        "last_failures": [
                            {
                                "id": str(r.pk),
                                "task": r.task_name,
                                "queue": r.queue,
                                "status": r.status,
                                "attempt": r.attempt,
                                "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                                "error_type": r.error_type,
                                "error_message": r.error_message,
                            }
                            for r in failures
                        ],
                    },
                    indent=2,
                )
            )
            return
        out = ["Queues"]
        out.append(
            _table(
                ("queue", "waiting", "running", "scheduled", "oldest wait"),
                [
                    (
                        q.queue,
                        q.waiting,
                        q.running,
                        q.scheduled,
                        _age(q.oldest_wait) if q.waiting else "-",
                    )
                    for q in queues
                ],
            )
            if queues
            else "(no unfinished runs)"
        )
        out += [
            f"! queue {q.queue!r}: {q.waiting} due run(s) waiting for {_age(q.oldest_wait)} and "
            "no live worker serves it (check the queue name, or start a worker with --queue "
            f"{q.queue})"
            for q in queues
            if q.queue in unserved
        ]
        if paused:
            out += ["", "Paused (their runs wait until resumed: manage.py tasks_queue resume)"]
            out.append(
                _table(
                    ("kind", "name", "paused since (UTC)"),
                    [
                        (kind, name, since.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
                        for kind, name, since in paused
                    ],
                )
            )
        out += ["", "Live workers"]
        out.append(
            _table(
                ("id", "host", "queues", "concurrency", "runs done", "last beat"),
                [
                    (
                        w.worker_id,
                        w.host,
                        w.queues or "all",
                        w.concurrency,
                        w.runs_done,
                        f"{_age((now - w.last_beat).total_seconds())} ago",
                    )
                    for w in workers
                ],
            )
            if workers
            else "(no worker has sent a heartbeat lately)"
        )
        out += ["", "Last failures"]
        headers = ("finished (UTC)", "task", "queue", "status", "attempt", "run", "error")
        rows = [
            [
                r.finished_at.strftime("%Y-%m-%d %H:%M:%S") if r.finished_at else "-",
                r.task_name,
                r.queue,
                r.status,
                r.attempt,
                r.pk,
                " ".join(f"{r.error_type}: {r.error_message}".split()),
            ]
            for r in failures
        ]
        if not options["wide"]:
            _fit_last_column(headers, rows, shutil.get_terminal_size((120, 24)).columns)
        out.append(_table(headers, rows) if failures else "(none in the last 7 days)")
        self.stdout.write("\n".join(out))
