"""The task model asks the layers above it through ``core.running``; the app wires them."""

from __future__ import annotations

import pytest

from django_generic_tasks import observability
from django_generic_tasks.core.running import RunServices, services
from django_generic_tasks.exceptions import ConfigurationError
from django_generic_tasks.execution import cancellation, progress, steps


def test_the_ready_app_routes_progress_cancels_and_start_tracing_to_their_layers() -> None:
    assert services.report_progress is progress.report
    assert services.cancel_requested is cancellation.is_requested
    assert services.step is steps.step
    assert services.producer_tracing is observability


def test_before_the_app_is_ready_progress_is_refused_and_nothing_is_cancelled() -> None:
    unwired = RunServices()
    with pytest.raises(ConfigurationError, match="INSTALLED_APPS"):
        unwired.report_progress(object(), 1, 2, "")
    with pytest.raises(ConfigurationError, match="INSTALLED_APPS"):
        unwired.step(object(), "fetch")
    assert unwired.cancel_requested("any-run") is False
    assert unwired.producer_tracing is None
