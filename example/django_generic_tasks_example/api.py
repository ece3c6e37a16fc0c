"""The project's own NinjaAPI, with the tasks router mounted (as in the README)."""

from ninja import NinjaAPI

import django_generic_tasks.api

api = NinjaAPI()
api.add_router("/tasks/", django_generic_tasks.api.router)
