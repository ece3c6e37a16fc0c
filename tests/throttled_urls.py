"""A second URLconf: a tasks router mounted on a NinjaAPI that throttles anonymous callers.

It gets its own ``TasksRouter``, built under the settings of the tests that use it (the
router decides which operations carry django-ninja auth when it is first mounted).
"""

from django.urls import path
from ninja import NinjaAPI
from ninja.throttling import AnonRateThrottle

from django_generic_tasks.api import TasksRouter

api = NinjaAPI(urls_namespace="tests-throttled", throttle=[AnonRateThrottle("2/m")])
api.add_router("/tasks/", TasksRouter())

urlpatterns = [path("throttled/", api.urls)]
