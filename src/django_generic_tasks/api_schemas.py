"""Older home of the tasks endpoints' schemas: ``django_generic_tasks.api.schemas`` now."""

from .api.schemas import (
    DetailOut,
    ErrorOut,
    RunOut,
    RunStatusOut,
    StartedOut,
    ValidationErrorOut,
    body_model,
    envelope,
    envelope_json,
    error_out,
    http_status,
    is_push_delivery,
    jsonable,
    read_run_headers,
    run_headers_openapi,
)
from .wire import (
    CLOUD_TASKS_NAME_HEADER,
    EXECUTION_COUNT_HEADER,
    RETRY_COUNT_HEADER,
    RUN_ID_HEADER,
)

__all__ = [
    "CLOUD_TASKS_NAME_HEADER",
    "EXECUTION_COUNT_HEADER",
    "RETRY_COUNT_HEADER",
    "RUN_ID_HEADER",
    "DetailOut",
    "ErrorOut",
    "RunOut",
    "RunStatusOut",
    "StartedOut",
    "ValidationErrorOut",
    "body_model",
    "envelope",
    "envelope_json",
    "error_out",
    "http_status",
    "is_push_delivery",
    "jsonable",
    "read_run_headers",
    "run_headers_openapi",
]
