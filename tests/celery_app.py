"""The Celery app of the test suite: ``celery -A tests.celery_app worker``.

The broker comes from ``CELERY_BROKER_URL`` (Redis by default), results go to Redis when
``CELERY_RESULT_BACKEND`` is set. Settings follow the README's crash-safety advice.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")


def make_app(
    broker: str, result_backend: str | None = None, *, django: bool = True, **conf: object
) -> Celery:
    """A Celery app configured the way the README recommends, on ``broker``.

    ``django=False`` leaves out Celery's Django fix-up (for in-process workers in tests).
    """
    app = Celery(
        "tests",
        broker=broker,
        backend=result_backend or None,
        set_as_current=False,
        **({} if django else {"fixups": []}),
    )
    settings: dict[str, object] = {
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "worker_prefetch_multiplier": 1,
        "task_queue_max_priority": 10,
        "task_default_priority": 5,
        "broker_connection_retry_on_startup": True,
        # Short, so a message held by a killed worker comes back quickly in the crash test.
        "broker_transport_options": {
            "visibility_timeout": float(os.environ.get("CELERY_VT", "43200")),
            "unacked_restore_interval": 1 if "CELERY_VT" in os.environ else 10,
            "unacked_restore_throttle": 1 if "CELERY_VT" in os.environ else 10,
        },
        "worker_hijack_root_logger": False,
        # The docs' advice: our queue "default" is the Celery queue "default" (check W402).
        "task_default_queue": "default",
        # The docs' advice: a started run reads "running" (needs a result backend).
        "task_track_started": True,
    }
    settings.update(conf)
    app.conf.update(settings)
    return app


app = make_app(
    os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/15"),
    os.environ.get("CELERY_RESULT_BACKEND"),
)
app.autodiscover_tasks()

import tests.workerapp.tasks  # noqa: E402  (the tasks the worker tests start)

if os.environ.get("OTEL_TEST_SPANS_FILE"):  # OpenTelemetry tests: the SDK, spans to a file
    import tests.otel_child  # noqa: F401
