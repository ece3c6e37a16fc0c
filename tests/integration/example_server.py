"""Serve the example project with ``DEBUG`` off, for fuzzing its API from outside.

``python tests/integration/example_server.py DIR`` migrates a fresh SQLite database in ``DIR``,
then serves the example's WSGI application on 127.0.0.1 (a free port) and prints
``listening on <port>`` once it accepts connections. E-mails go to files in ``DIR``.

Time in the example's tasks runs a million times faster (``ReindexTask`` sleeps per batch), so
a fuzzer's direct calls finish at once; a duration too large for ``time.sleep`` still fails
as it would, so params the task cannot run stay visible.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ROOT = Path(__file__).resolve().parents[2]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def main() -> None:
    """Migrate, then serve until killed."""
    directory = Path(sys.argv[1])
    sys.path[:0] = [str(ROOT / "example"), str(ROOT / "src")]
    os.environ["DJANGO_SETTINGS_MODULE"] = "django_generic_tasks_example.settings"
    os.environ["DJANGO_DEBUG"] = "0"
    os.environ["EXAMPLE_DB"] = str(directory / "example.sqlite3")
    os.environ["EXAMPLE_EMAIL_DIR"] = str(directory / "emails")

    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)

    from django.core.wsgi import get_wsgi_application

    from my_app import tasks as example_tasks

    real_sleep = time.sleep

    class _FastTime:
        def __getattr__(self, name: str) -> object:
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            real_sleep(seconds / 1e6)

    example_tasks.time = _FastTime()  # type: ignore[assignment]

    server = make_server(
        "127.0.0.1", 0, get_wsgi_application(), server_class=_Server, handler_class=_QuietHandler
    )
    print(f"listening on {server.server_port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
