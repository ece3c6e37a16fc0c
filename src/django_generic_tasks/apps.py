"""The Django app: autodiscovers ``tasks`` modules and registers system checks."""

from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class DjangoGenericTasksConfig(AppConfig):
    """``django_generic_tasks`` in ``INSTALLED_APPS``."""

    name = "django_generic_tasks"
    verbose_name = "Tasks"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the system checks, wire the task model to the layers above it, find the
        projects' ``tasks`` modules."""
        from . import checks, security  # noqa: F401  (registers the system checks)
        from .api import checks as api_checks  # noqa: F401  (registers W301, W302, E306)
        from .backends.dbtasks import runs as django_task_runs
        from .schedules import checks as schedule_checks  # noqa: F401  (registers E5xx)
        from .support.text import install_log_filter

        django_task_runs.install()  # the worker finds Django @task runs' classes by name
        install_log_filter()  # callers' strings in log records cannot forge lines
        install_run_services()

        autodiscover_modules("tasks")


def install_run_services() -> None:
    """Give the task model (``core``) what it asks while a task runs or starts: progress
    reports, cancel requests and steps go to ``execution``, ``start()`` is traced by
    ``observability``. The task model cannot import them itself (they sit above it)."""
    from . import observability
    from .core import running
    from .execution import cancellation, progress, steps

    running.install(
        report_progress=progress.report,
        cancel_requested=cancellation.is_requested,
        step=steps.step,
        producer_tracing=observability,
    )
