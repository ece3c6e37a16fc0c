"""A URLconf with its own tasks router, for the test that builds it while auth is configured.

The router decides which operations carry django-ninja auth when it is first mounted, so that
test sets ``TASKS_API_AUTHENTICATION`` before its first request; no other test uses it.
"""

from django.urls import path
from ninja import NinjaAPI

from django_generic_tasks.api import TasksRouter

api = NinjaAPI(urls_namespace="tests-protected")
api.add_router("/tasks/", TasksRouter())

urlpatterns = [path("protected/", api.urls)]
