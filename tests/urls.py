"""The test project's URLs: the admin, and a NinjaAPI with the tasks router at /api/tasks/."""

from django.contrib import admin
from django.urls import path
from ninja import NinjaAPI

import django_generic_tasks.api

api = NinjaAPI(title="django-generic-tasks tests", urls_namespace="tests-api")
api.add_router("/tasks/", django_generic_tasks.api.router)

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/", api.urls),
]
