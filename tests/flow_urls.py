"""A URLconf whose tasks router has endpoints for the tasks with limits
(``tests.contract.flow_tasks``, imported before the router is built): the direct calls of
``test_flow_direct_calls.py``. Kept apart so the rest of the suite keeps the plain claim."""

from django.urls import path
from ninja import NinjaAPI

import tests.contract.flow_tasks  # noqa: F401  (registers the tasks with limits)
from django_generic_tasks.api import TasksRouter

api = NinjaAPI(urls_namespace="tests-flow")
api.add_router("/tasks/", TasksRouter())

urlpatterns = [path("flow/", api.urls)]
