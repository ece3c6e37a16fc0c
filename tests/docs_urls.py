"""A URLconf mounting the tasks router with the OpenAPI docs for staff only, and with none."""

from django.contrib import admin
from django.contrib.admin.views.decorators import staff_member_required
from django.urls import path
from ninja import NinjaAPI

from django_generic_tasks.api import TasksRouter

router = TasksRouter()
staff_docs = NinjaAPI(urls_namespace="tests-staff-docs", docs_decorator=staff_member_required)
staff_docs.add_router("/tasks/", router)
no_docs = NinjaAPI(urls_namespace="tests-no-docs", openapi_url=None)
no_docs.add_router("/tasks/", router)

urlpatterns = [
    path("admin/", admin.site.urls),  # where staff_member_required sends anonymous callers
    path("staff-docs/", staff_docs.urls),
    path("no-docs/", no_docs.urls),
]
