"""The HTTP layer: a django-ninja router with one endpoint per registered task."""

from __future__ import annotations

import warnings
from typing import Any


def warn_late_registration(task_class: type[Any]) -> None:
    """Warn that ``task_class`` was registered after the router built its routes."""
    warnings.warn(
        f"Task {task_class.name!r} was registered after the tasks API router built its URLs, "
        "so it has no HTTP endpoint. Import task modules in AppConfig.ready() or an app's "
        "tasks.py.",
        RuntimeWarning,
        stacklevel=3,
    )
